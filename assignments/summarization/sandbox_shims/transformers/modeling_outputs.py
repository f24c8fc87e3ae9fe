"""transformers.modeling_outputs in the grading sandbox (see transformers/__init__.py)."""
from grader.standins import module_getattr


class Seq2SeqLMOutput:
    """HF's output of a seq2seq language model: each field by name (None when not set), and, as
    HF's ModelOutput, by key or by index over the fields that are set, in this order."""

    FIELDS = ("loss", "logits", "past_key_values", "decoder_hidden_states", "decoder_attentions",
              "cross_attentions", "encoder_last_hidden_state", "encoder_hidden_states", "encoder_attentions")

    def __init__(self, **fields):
        unknown = set(fields) - set(self.FIELDS)
        if unknown:
            raise TypeError(f"Seq2SeqLMOutput got unexpected fields {sorted(unknown)}")
        for name in self.FIELDS:
            setattr(self, name, fields.get(name))

    def to_tuple(self) -> tuple:
        return tuple(getattr(self, name) for name in self.FIELDS if getattr(self, name) is not None)

    def keys(self) -> list:
        return [name for name in self.FIELDS if getattr(self, name) is not None]

    def __getitem__(self, key):
        if isinstance(key, str):
            return dict(zip(self.keys(), self.to_tuple()))[key]
        return self.to_tuple()[key]

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())


__getattr__ = module_getattr(__name__)
