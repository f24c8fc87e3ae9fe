"""Model configuration for minbert (support file: students do not edit it).

A configuration is a bag of named hyperparameters read from a checkpoint's config.json.
Keys this code does not know are kept as attributes too, so a config.json written by any
version of Hugging Face transformers loads unchanged.
"""
import json
from pathlib import Path

CONFIG_NAME = "config.json"


class PretrainedConfig:
    """Stores every keyword argument as an attribute."""

    model_type = ""
    # Generic settings the course's earlier config.py always defined; student code may read them.
    DEFAULTS = {"output_attentions": False, "output_hidden_states": False, "return_dict": True,
                "is_decoder": False, "chunk_size_feed_forward": 0, "gradient_checkpointing": False,
                "use_cache": True, "position_embedding_type": "absolute"}

    def __init__(self, **kwargs):
        # The checkpoint this config was read from; from_pretrained fills it in.
        self.name_or_path = str(kwargs.pop("name_or_path", ""))
        for key, value in {**self.DEFAULTS, **kwargs}.items():
            setattr(self, key, value)

    @classmethod
    def from_dict(cls, config_dict, **overrides):
        """A config from a dict; `overrides` take precedence over its entries."""
        return cls(**{**config_dict, **overrides})

    @classmethod
    def from_json_file(cls, json_file, **overrides):
        with open(json_file, encoding="utf-8") as f:
            config_dict = json.load(f)
        return cls.from_dict(config_dict, **overrides)

    @classmethod
    def from_pretrained(cls, path, **overrides):
        """Read `path`/config.json (or `path` itself when it is a JSON file)."""
        path = Path(path)
        json_file = path / CONFIG_NAME if path.is_dir() else path
        if not json_file.is_file():
            raise FileNotFoundError(f"no model configuration at {json_file}")
        config = cls.from_json_file(json_file, **overrides)
        if not config.name_or_path:
            config.name_or_path = str(path)
        return config

    def to_dict(self):
        return dict(vars(self))

    def __repr__(self):
        return f"{type(self).__name__}({json.dumps(self.to_dict(), sort_keys=True, default=str)})"


class BertConfig(PretrainedConfig):
    """Hyperparameters of BERT; the defaults are those of bert-base-uncased."""

    model_type = "bert"

    def __init__(
        self,
        vocab_size=30522,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=512,
        type_vocab_size=2,
        initializer_range=0.02,
        layer_norm_eps=1e-12,
        pad_token_id=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.pad_token_id = pad_token_id
