"""The minbert reference (reference/bert/bert.py, classifier.py) and its support modules
(assignments/minbert/starter/base_bert.py, config.py, utils.py) checked against Hugging Face
transformers.BertModel: random small models in float64 and float32, the real MiniLM checkpoint
on SST sentences, parameter gradients, and the loading rules of from_pretrained.
"""
import json
from types import SimpleNamespace

import pytest
import torch

from grader.modules import load_module_set
from reference.bert import STARTER as STARTER_DIR

LENGTHS = (16, 11, 5, 1)  # one full row, and rows padded down to the [CLS] token alone
# The sizes of the random models; everything else takes BertConfig's defaults.
SMALL = dict(vocab_size=100, num_hidden_layers=2, intermediate_size=64, max_position_embeddings=64, type_vocab_size=2)
RANDOM_CONFIGS = {
    "h32_heads2": dict(SMALL, hidden_size=32, num_attention_heads=2),
    "h32_heads4": dict(SMALL, hidden_size=32, num_attention_heads=4),
    # a non-default LayerNorm eps and pad id, which the model must take from the config
    "h48_heads3": dict(SMALL, hidden_size=48, num_attention_heads=3, layer_norm_eps=1e-5, pad_token_id=3),
}
TOLERANCES = {torch.float64: dict(atol=1e-10, rtol=1e-10), torch.float32: dict(atol=1e-5, rtol=1e-3)}


def real_tokens(hidden, mask):
    """The rows of hidden [bs, seq, h] at real (unpadded) positions: [n_real, h]."""
    return hidden[mask.bool()]


def compare_outputs(ours, theirs, mask, **tol):
    torch.testing.assert_close(real_tokens(ours["last_hidden_state"], mask), real_tokens(theirs.last_hidden_state, mask), **tol)
    torch.testing.assert_close(ours["pooler_output"], theirs.pooler_output, **tol)


# ---------------------------------------------------------------- (a) random models vs HF


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("config_name", sorted(RANDOM_CONFIGS))
def test_random_model_matches_hf(mods, hf_checkpoint, make_batch, default_dtype, config_name, attn_implementation, dtype):
    hf_model, directory = hf_checkpoint(RANDOM_CONFIGS[config_name], attn_implementation, dtype, seed=1)
    with default_dtype(dtype):
        ours = mods["bert"].BertModel.from_pretrained(directory)
    assert ours.dtype == dtype and not ours.training
    config = ours.config
    ids, mask = make_batch(config.vocab_size, config.pad_token_id, LENGTHS, seed=2)
    with torch.no_grad():
        mine = ours(ids, mask)
        theirs = hf_model(input_ids=ids, attention_mask=mask)
    assert mine["last_hidden_state"].shape == (len(LENGTHS), max(LENGTHS), config.hidden_size)
    assert mine["pooler_output"].shape == (len(LENGTHS), config.hidden_size)
    compare_outputs(mine, theirs, mask, **TOLERANCES[dtype])


# ---------------------------------------------------------------- (b) the real MiniLM checkpoint


@pytest.fixture(scope="module")
def minilm_pair(mods, transformers, minilm_dir):
    """(ours, HF's) MiniLM models, both in eval mode; ours through the name 'bert-base-uncased'."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DLGRADE_BERT_WEIGHTS", raising=False)
        ours = mods["bert"].BertModel.from_pretrained("bert-base-uncased")
    theirs = transformers.BertModel.from_pretrained(str(minilm_dir)).eval()
    return ours, theirs


def test_minilm_matches_hf_on_sst(minilm_pair, transformers, minilm_dir, sst_sentences):
    ours, theirs = minilm_pair
    assert ours.config.hidden_size == 384 and ours.config.num_hidden_layers == 6
    tokenizer = transformers.BertTokenizer(vocab_file=str(minilm_dir / "vocab.txt"), do_lower_case=True)
    batch = tokenizer(sst_sentences, padding=True, return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert len(set(mask.sum(1).tolist())) > 8, "the sentences should give many different paddings"
    with torch.no_grad():
        mine = ours(ids, mask)
        hf_out = theirs(input_ids=ids, attention_mask=mask)
    compare_outputs(mine, hf_out, mask, **TOLERANCES[torch.float32])


def test_minilm_parameters_are_the_checkpoint(minilm_pair, mods):
    """Every parameter of ours equals HF's parameter of the mapped name, bit for bit."""
    ours, theirs = minilm_pair
    starter_name = mods["base_bert"].starter_name
    their_params = {starter_name(name): p for name, p in theirs.named_parameters()}
    our_params = dict(ours.named_parameters())
    assert our_params.keys() == their_params.keys()
    for name, param in our_params.items():
        assert torch.equal(param, their_params[name]), name


# ---------------------------------------------------------------- (c) gradients vs HF


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_parameter_gradients_match_hf(mods, hf_checkpoint, make_batch, default_dtype, attn_implementation):
    hf_model, directory = hf_checkpoint(RANDOM_CONFIGS["h48_heads3"], attn_implementation, torch.float64, seed=3)
    with default_dtype(torch.float64):
        ours = mods["bert"].BertModel.from_pretrained(directory)
    config = ours.config
    ids, mask = make_batch(config.vocab_size, config.pad_token_id, LENGTHS, seed=4)
    # The pad token also at a real position, where only padding_idx keeps its row's gradient zero.
    ids[0, 3] = config.pad_token_id
    gen = torch.Generator().manual_seed(5)
    # Fixed random upstream gradients, on real positions only (what padding positions hold is
    # of no use to anybody).
    up_hidden = torch.randn(len(LENGTHS), max(LENGTHS), config.hidden_size, generator=gen, dtype=torch.float64)
    up_hidden = up_hidden * mask[..., None]
    up_pooler = torch.randn(len(LENGTHS), config.hidden_size, generator=gen, dtype=torch.float64)

    mine = ours(ids, mask)
    ((mine["last_hidden_state"] * up_hidden).sum() + (mine["pooler_output"] * up_pooler).sum()).backward()
    theirs = hf_model(input_ids=ids, attention_mask=mask)
    ((theirs.last_hidden_state * up_hidden).sum() + (theirs.pooler_output * up_pooler).sum()).backward()

    starter_name = mods["base_bert"].starter_name
    their_grads = {starter_name(name): p.grad for name, p in hf_model.named_parameters()}
    our_params = dict(ours.named_parameters())
    assert our_params.keys() == their_grads.keys()
    for name, param in our_params.items():
        assert param.grad is not None, name
        torch.testing.assert_close(param.grad, their_grads[name], atol=1e-10, rtol=1e-8, msg=name)
    # padding_idx: the pad token's embedding row gets no gradient even from a real position
    assert torch.all(our_params["word_embedding.weight"].grad[config.pad_token_id] == 0)
    assert our_params["word_embedding.weight"].grad[ids[0, 1]].abs().sum() > 0


def test_dropout_matches_hf_in_training_mode(mods, hf_checkpoint, make_batch, default_dtype):
    """HF's eager BERT draws its dropout masks in the same order and shapes (embeddings, attention
    probabilities, after each of the two dense layers of every block), so with the same seed both
    drop the same units: this pins down where every dropout sits."""
    sizes = dict(RANDOM_CONFIGS["h48_heads3"], hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.3)
    hf_model, directory = hf_checkpoint(sizes, "eager", torch.float64, seed=13)
    with default_dtype(torch.float64):
        ours = mods["bert"].BertModel.from_pretrained(directory)
    ours.train()
    hf_model.train()
    ids, mask = make_batch(ours.config.vocab_size, ours.config.pad_token_id, LENGTHS, seed=14)
    torch.manual_seed(15)
    mine = ours(ids, mask)
    torch.manual_seed(15)
    theirs = hf_model(input_ids=ids, attention_mask=mask)
    torch.manual_seed(16)
    other_draw = ours(ids, mask)
    compare_outputs(mine, theirs, mask, **TOLERANCES[torch.float64])
    assert not torch.allclose(other_draw["pooler_output"], mine["pooler_output"])  # dropout is active


# ---------------------------------------------------------------- (d) properties


def test_padding_does_not_change_real_tokens(mods, hf_checkpoint, make_batch, default_dtype):
    _, directory = hf_checkpoint(RANDOM_CONFIGS["h32_heads4"], "eager", torch.float64, seed=6)
    with default_dtype(torch.float64):
        ours = mods["bert"].BertModel.from_pretrained(directory)
    config = ours.config
    ids, mask = make_batch(config.vocab_size, config.pad_token_id, LENGTHS, seed=7)
    extra = 9
    longer_ids = torch.cat([ids, torch.full((len(LENGTHS), extra), config.pad_token_id)], dim=1)
    longer_mask = torch.cat([mask, torch.zeros(len(LENGTHS), extra, dtype=torch.long)], dim=1)
    with torch.no_grad():
        short = ours(ids, mask)
        long = ours(longer_ids, longer_mask)
    torch.testing.assert_close(real_tokens(long["last_hidden_state"][:, : ids.shape[1]], mask), real_tokens(short["last_hidden_state"], mask), atol=1e-12, rtol=0)
    torch.testing.assert_close(long["pooler_output"], short["pooler_output"], atol=1e-12, rtol=0)
    # ...while the padding is really attended away: changing a real token changes the others
    changed_ids = ids.clone()
    changed_ids[0, 1] = 2 if ids[0, 1] == 1 else 1
    with torch.no_grad():
        changed = ours(changed_ids, mask)
    assert not torch.allclose(changed["last_hidden_state"][0, 0], short["last_hidden_state"][0, 0])


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_extended_attention_mask(mods, dtype):
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    extended = mods["utils"].get_extended_attention_mask(mask, dtype)
    assert extended.shape == (2, 1, 1, 3)
    assert extended.dtype == dtype
    expected = torch.tensor([[0.0, 0.0, -10000.0], [0.0, -10000.0, -10000.0]], dtype=dtype)[:, None, None, :]
    assert torch.equal(extended, expected)
    with pytest.raises(ValueError, match="batch_size, seq_len"):
        mods["utils"].get_extended_attention_mask(mask[:, None, :], dtype)


def test_star_import_gives_what_student_code_uses():
    """A student's bert.py may use torch, nn, F, math and the mask helper through `from utils import *` alone."""
    probe = load_module_set(
        {"utils.py": STARTER_DIR / "utils.py", "probe.py": "probe.py"}, "probe", sources={"probe.py": "from utils import *\n"}
    )["probe"]
    for name in ("torch", "nn", "F", "math", "Optional", "Tensor", "get_extended_attention_mask"):
        assert hasattr(probe, name), name
    assert probe.F is torch.nn.functional and probe.nn is torch.nn


def test_missing_directory_is_a_clear_error(mods, tmp_path):
    BertModel = mods["bert"].BertModel
    missing = tmp_path / "no_such_checkpoint"
    with pytest.raises(FileNotFoundError, match="no_such_checkpoint"):
        BertModel.from_pretrained(missing)
    with pytest.raises(FileNotFoundError, match="no_such_checkpoint"):
        BertModel.from_pretrained(str(missing))
    # a relative path is a path too, not a model name to be replaced by MiniLM
    with pytest.raises(FileNotFoundError, match="no_such_checkpoint"):
        BertModel.from_pretrained("./no_such_checkpoint")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="model.safetensors or pytorch_model.bin"):
        BertModel.from_pretrained(tmp_path)


def test_weights_env_overrides_model_names(mods, hf_checkpoint, make_batch, monkeypatch):
    hf_model, directory = hf_checkpoint(RANDOM_CONFIGS["h32_heads2"], "eager", torch.float32, seed=8)
    monkeypatch.setenv("DLGRADE_BERT_WEIGHTS", str(directory))
    assert mods["base_bert"].weights_dir("bert-base-uncased") == directory.resolve()
    ours = mods["bert"].BertModel.from_pretrained("bert-base-uncased")
    assert ours.config.hidden_size == 32 and ours.config.name_or_path == "bert-base-uncased"
    ids, mask = make_batch(100, 0, LENGTHS, seed=9)
    with torch.no_grad():
        compare_outputs(ours(ids, mask), hf_model(input_ids=ids, attention_mask=mask), mask, **TOLERANCES[torch.float32])

    monkeypatch.setenv("DLGRADE_BERT_WEIGHTS", str(directory / "gone"))
    with pytest.raises(FileNotFoundError, match="DLGRADE_BERT_WEIGHTS"):
        mods["bert"].BertModel.from_pretrained("bert-base-uncased")


def test_default_name_resolves_to_minilm(mods, minilm_dir):
    assert mods["base_bert"].weights_dir("bert-base-uncased") == minilm_dir.resolve()


def test_overrides_reach_the_config(mods, hf_checkpoint):
    _, directory = hf_checkpoint(RANDOM_CONFIGS["h32_heads2"])
    ours = mods["bert"].BertModel.from_pretrained(directory, hidden_dropout_prob=0.3, attention_probs_dropout_prob=0.0)
    assert ours.embed_dropout.p == 0.3 and ours.bert_layers[0].out_dropout.p == 0.3
    assert ours.bert_layers[0].self_attention.dropout.p == 0.0


def _state(directory):
    from safetensors.torch import load_file

    return load_file(str(directory / "model.safetensors"))


def test_legacy_checkpoint_names_load(mods, hf_checkpoint, tmp_path):
    """'bert.' prefixes, gamma/beta, pretraining heads and index buffers, as in old checkpoints;
    and a pytorch_model.bin instead of model.safetensors."""
    _, directory = hf_checkpoint(RANDOM_CONFIGS["h32_heads2"], seed=10)
    reference = mods["bert"].BertModel.from_pretrained(directory)
    legacy = {}
    for name, tensor in _state(directory).items():
        name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        legacy["bert." + name] = tensor
    legacy["bert.embeddings.position_ids"] = torch.arange(64)[None]
    legacy["cls.predictions.bias"] = torch.zeros(100)
    torch.save(legacy, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text((directory / "config.json").read_text())
    loaded = mods["bert"].BertModel.from_pretrained(tmp_path)
    for (name, a), (_, b) in zip(reference.named_parameters(), loaded.named_parameters()):
        assert torch.equal(a, b), name


def test_unknown_and_missing_names_are_reported(mods, hf_checkpoint, tmp_path):
    from safetensors.torch import save_file

    _, directory = hf_checkpoint(RANDOM_CONFIGS["h32_heads2"], seed=11)
    state = _state(directory)
    state["encoder.layer.0.attention.self.qurey.weight"] = state.pop("encoder.layer.0.attention.self.query.weight")
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text((directory / "config.json").read_text())
    with pytest.raises(RuntimeError) as error:
        mods["bert"].BertModel.from_pretrained(tmp_path)
    assert "bert_layers.0.self_attention.query.weight" in str(error.value)
    assert "bert_layers.0.self_attention.qurey.weight" in str(error.value)


def test_checkpoint_is_read_once_and_not_shared(mods, hf_checkpoint, monkeypatch):
    import safetensors.torch

    _, directory = hf_checkpoint(RANDOM_CONFIGS["h32_heads2"], seed=12)
    reads = []
    real_load_file = safetensors.torch.load_file
    monkeypatch.setattr(safetensors.torch, "load_file", lambda *a, **k: reads.append(a) or real_load_file(*a, **k))
    first = mods["bert"].BertModel.from_pretrained(directory)
    with torch.no_grad():
        first.pooler_dense.weight.add_(1.0)
    second = mods["bert"].BertModel.from_pretrained(directory)
    assert len(reads) == 1
    assert not torch.equal(first.pooler_dense.weight, second.pooler_dense.weight)


def test_config_keeps_unknown_keys(mods, tmp_path):
    BertConfig = mods["config"].BertConfig
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 64, "model_type": "bert", "_name_or_path": "x"}))
    config = BertConfig.from_pretrained(tmp_path, num_hidden_layers=3)
    assert (config.hidden_size, config.num_hidden_layers, config.vocab_size) == (64, 3, 30522)
    assert config.model_type == "bert" and config._name_or_path == "x" and config.layer_norm_eps == 1e-12
    assert BertConfig.from_dict({"foo": 1}).foo == 1


def test_starter_has_the_reference_parameters(mods, starter_mods):
    """The reference is written against the student API: same parameters, same buffers."""
    config = mods["config"].BertConfig(**RANDOM_CONFIGS["h32_heads4"])
    ours = mods["bert"].BertModel(config)
    starter = starter_mods["bert"].BertModel(config)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in starter.state_dict().items()}
    ids = torch.ones(2, 5, dtype=torch.long)
    with pytest.raises(NotImplementedError):
        starter(ids, torch.ones_like(ids))


# ---------------------------------------------------------------- (e) classifier


@pytest.mark.parametrize("option", ["pretrain", "finetune"])
def test_classifier(mods, minilm_dir, option):
    torch.manual_seed(0)
    config = SimpleNamespace(num_labels=5, hidden_dropout_prob=0.3, hidden_size=768, data_dir=".", option=option)
    model = mods["classifier"].BertSentClassifier(config)
    assert model.bert.config.hidden_size == 384
    ids = torch.tensor([[101, 7592, 2088, 102, 0, 0], [101, 7592, 15756, 2897, 2005, 102]])
    mask = (ids != 0).long()

    heads = [m for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) and not name.startswith("bert")]
    assert len(heads) == 1 and heads[0].in_features == 384 and heads[0].out_features == 5

    model.eval()
    log_probs = model(ids, mask)
    assert log_probs.shape == (2, 5)
    torch.testing.assert_close(log_probs.logsumexp(dim=-1), torch.zeros(2), atol=1e-5, rtol=0)
    # eval mode: log_softmax of the linear head on the pooler output, nothing else
    expected = torch.log_softmax(heads[0](model.bert(ids, mask)["pooler_output"]), dim=-1)
    torch.testing.assert_close(log_probs, expected, atol=1e-6, rtol=0)
    # training the head alone (BERT kept in eval mode): dropout on the pooler output is active
    model.train()
    model.bert.eval()
    assert not torch.allclose(model(ids, mask), model(ids, mask))

    bert_params = dict(model.bert.named_parameters())
    head_params = {name: p for name, p in model.named_parameters() if not name.startswith("bert.")}
    assert head_params and all(p.requires_grad for p in head_params.values())
    assert all(p.requires_grad == (option == "finetune") for p in bert_params.values())

    model.eval()
    model(ids, mask)[:, 0].sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head_params.values())
    if option == "pretrain":
        assert all(p.grad is None for p in bert_params.values())
    else:
        assert bert_params["pooler_dense.weight"].grad.abs().sum() > 0
        assert bert_params["word_embedding.weight"].grad[7592].abs().sum() > 0


def test_classifier_rejects_unknown_option(mods):
    config = SimpleNamespace(num_labels=2, hidden_dropout_prob=0.3, option="pretrian")
    with pytest.raises(ValueError, match="pretrian"):
        mods["classifier"].BertSentClassifier(config)
