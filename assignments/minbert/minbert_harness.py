"""How the grader calls a student's minbert files: build the module the course's code would
build, load weights the grader chose, call one method, return plain tensors.

This file is a support module of the sandbox: the same code runs on the student's modules (in
the child) and on the reference's or a mutant's (in the parent), so both are called exactly
alike. Each function receives `modules` ({"bert": module, "classifier": ..., ...}) first.

Dropout is checked in train mode with a deterministic stand-in (`deterministic_dropout`): the
keep-mask depends only on the tensor's shape and the drop probability, so the student's code
and the reference drop the same entries whichever dropout call (nn.Dropout, F.dropout,
torch.dropout) they use and in whatever order they make them.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import zlib
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

import base_bert
import config as bert_config
import tokenizer as bert_tokenizer
from utils import get_extended_attention_mask

COURSE_NAME = "bert-base-uncased"


class HarnessError(Exception):
    """The student's module does not fit the starter's API (a message for the student)."""


# ---- deterministic dropout ------------------------------------------------------------------

def _keep_mask(shape, p: float, device) -> torch.Tensor:
    seed = zlib.crc32(f"{tuple(shape)}/{p:.6f}".encode())
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(tuple(shape), generator=generator) >= p).to(device)


def _dropout(input, p=0.5, training=True, inplace=False):
    if not training or p == 0.0:
        return input
    scaled = _keep_mask(input.shape, float(p), input.device).to(input.dtype) / (1.0 - p)
    return input.mul_(scaled) if inplace else input * scaled


@contextlib.contextmanager
def deterministic_dropout():
    saved = (F.dropout, torch.dropout, torch.nn.functional.dropout)
    F.dropout = torch.dropout = torch.nn.functional.dropout = _dropout
    try:
        yield
    finally:
        F.dropout, torch.dropout, torch.nn.functional.dropout = saved


# ---- building the student's modules -----------------------------------------------------------

def _class(modules: dict, module: str, name: str):
    try:
        return getattr(modules[module], name)
    except AttributeError:
        raise HarnessError(f"{module}.py has no class {name}") from None


def _load(model: torch.nn.Module, weights: dict, what: str) -> None:
    """Load the grader's weights by the starter's parameter names (float64 unless given)."""
    own = dict(model.named_parameters())
    own.update(dict(model.named_buffers()))
    unknown = sorted(set(weights) - set(own))
    if unknown:
        raise HarnessError(f"{what} has no parameter named {', '.join(unknown[:5])}: keep the starter's "
                           "parameter names (the grader and base_bert.py load weights by them)")
    with torch.no_grad():
        for name, value in weights.items():
            if tuple(own[name].shape) != tuple(value.shape):
                raise HarnessError(f"{what}.{name} has shape {list(own[name].shape)}; the starter's is {list(value.shape)}")
            own[name].data = value.clone().to(own[name].dtype)


def _build(modules: dict, module: str, name: str, config: dict, weights: dict, train: bool):
    model = _class(modules, module, name)(bert_config.BertConfig(**config))
    model = model.double()
    _load(model, weights, name)
    model.train(train)
    return model


def _run(fn):
    """The dropout stand-in can always be in place: in eval mode dropout does nothing."""
    with deterministic_dropout():
        return fn()


# ---- the calls the cases make ------------------------------------------------------------------

def self_attention(modules, key, query, value, attention_mask, config, weights, train=False):
    """BertSelfAttention.attention(key, query, value, attention_mask) -> [bs, seq, hidden]."""
    layer = _build(modules, "bert", "BertSelfAttention", config, weights, train)
    extended = get_extended_attention_mask(attention_mask, torch.float64)
    return _run(lambda: layer.attention(key, query, value, extended))


def self_attention_forward(modules, hidden_states, attention_mask, config, weights, train=False):
    """BertSelfAttention.forward(hidden_states, extended mask) -> [bs, seq, hidden]."""
    layer = _build(modules, "bert", "BertSelfAttention", config, weights, train)
    extended = get_extended_attention_mask(attention_mask, torch.float64)
    return _run(lambda: layer(hidden_states, extended))


def add_norm(modules, input, output, config, weights, sublayer="attention", train=False):
    """BertLayer.add_norm with the layer's own sublayer ("attention" or "out") modules."""
    layer = _build(modules, "bert", "BertLayer", config, weights, train)
    parts = {"attention": (layer.attention_dense, layer.attention_dropout, layer.attention_layer_norm),
             "out": (layer.out_dense, layer.out_dropout, layer.out_layer_norm)}[sublayer]
    return _run(lambda: layer.add_norm(input, output, *parts))


def layer(modules, hidden_states, attention_mask, config, weights, train=False):
    """BertLayer.forward(hidden_states, extended mask) -> [bs, seq, hidden]."""
    block = _build(modules, "bert", "BertLayer", config, weights, train)
    extended = get_extended_attention_mask(attention_mask, torch.float64)
    return _run(lambda: block(hidden_states, extended))


def embed(modules, input_ids, config, weights, train=False):
    """BertModel.embed(input_ids) -> [bs, seq, hidden]."""
    model = _build(modules, "bert", "BertModel", config, weights, train)
    return _run(lambda: model.embed(input_ids))


def _zero_padding(outputs: dict, attention_mask: torch.Tensor) -> dict:
    """Padded positions' hidden states are unspecified (the course zeroes them too)."""
    if not isinstance(outputs, dict) or "last_hidden_state" not in outputs or "pooler_output" not in outputs:
        raise HarnessError("BertModel.forward must return a dict with 'last_hidden_state' and 'pooler_output'")
    hidden = outputs["last_hidden_state"] * attention_mask[:, :, None].to(outputs["last_hidden_state"].dtype)
    return {"last_hidden_state": hidden, "pooler_output": outputs["pooler_output"]}


def model(modules, input_ids, attention_mask, config, weights):
    """BertModel.forward on a small random BERT (eval mode)."""
    bert = _build(modules, "bert", "BertModel", config, weights, train=False)
    return _zero_padding(bert(input_ids, attention_mask), attention_mask)


def model_gradients(modules, input_ids, attention_mask, upstream, config, weights):
    """Gradients of sum(last_hidden_state * upstream) w.r.t. a few named parameters."""
    bert = _build(modules, "bert", "BertModel", config, weights, train=False)
    outputs = _zero_padding(bert(input_ids, attention_mask), attention_mask)
    (outputs["last_hidden_state"] * upstream).sum().backward()
    named = dict(bert.named_parameters())
    wanted = ["word_embedding.weight", "pos_embedding.weight", "bert_layers.0.self_attention.query.weight",
              "bert_layers.0.attention_layer_norm.weight", "bert_layers.0.interm_dense.weight"]
    return {name: named[name].grad if named[name].grad is not None else torch.zeros_like(named[name]) for name in wanted}


def _tokenize(sentences: list[str]):
    tokenizer = bert_tokenizer.BertTokenizer.from_pretrained(COURSE_NAME)
    encoding = tokenizer([s.lower().strip() for s in sentences], return_tensors="pt", padding=True, truncation=True)
    return encoding["input_ids"], encoding["attention_mask"]


def pretrained_model(modules, sentences):
    """BertModel.from_pretrained('bert-base-uncased') (local weights) on real sentences, float32."""
    input_ids, attention_mask = _tokenize(sentences)
    bert = _class(modules, "bert", "BertModel").from_pretrained(COURSE_NAME)
    bert.eval()
    with torch.no_grad():
        return _zero_padding(bert(input_ids, attention_mask), attention_mask)


def _bert_hidden_size() -> int:
    with open(base_bert.weights_dir(COURSE_NAME) / "config.json") as f:
        return int(json.load(f)["hidden_size"])


def _classifier_forward(model, input_ids, attention_mask):
    """The 11-711 starter's forward(input_ids, attention_mask), or that of its 11-747
    predecessor (spring 2021), which also took token_type_ids in the middle."""
    parameters = list(inspect.signature(model.forward).parameters)
    if "token_type_ids" in parameters:
        return model(input_ids, torch.zeros_like(input_ids), attention_mask)
    return model(input_ids, attention_mask)


def classifier(modules, sentences, num_labels, option):
    """Build BertSentClassifier as the course's script does; report what the cases judge:
    the output's shape, whether rows are log-probabilities, and which parameters train."""
    torch.manual_seed(0)
    settings = SimpleNamespace(hidden_dropout_prob=0.3, num_labels=num_labels, hidden_size=_bert_hidden_size(),
                               data_dir=".", option=option)
    model = _class(modules, "classifier", "BertSentClassifier")(settings)
    model.eval()
    input_ids, attention_mask = _tokenize(sentences)
    with torch.no_grad():
        log_probs = _classifier_forward(model, input_ids, attention_mask)
    if not isinstance(log_probs, torch.Tensor):
        raise HarnessError(f"BertSentClassifier.forward returned {type(log_probs).__name__}, not a tensor")
    bert_params = [p for name, p in model.named_parameters() if name.startswith("bert.")]
    other_params = [p for name, p in model.named_parameters() if not name.startswith("bert.")]
    # rows of log-probabilities: exp sums to 1 (float32 rounding allowed), hence all <= 0
    row_sums = torch.logsumexp(log_probs.double(), dim=-1) if log_probs.dim() == 2 else None
    return {
        "shape": torch.tensor(list(log_probs.shape)),
        "rows are log-probabilities": torch.tensor(row_sums is not None and bool((row_sums.abs() < 1e-4).all())),
        "rows are probabilities": torch.tensor(log_probs.dim() == 2 and bool((log_probs >= 0).all())
                                               and bool(((log_probs.double().sum(-1) - 1).abs() < 1e-4).all())),
        "BERT trains (any, all)": torch.tensor([any(p.requires_grad for p in bert_params),
                                                all(p.requires_grad for p in bert_params)]),
        "head trains": torch.tensor(bool(other_params) and all(p.requires_grad for p in other_params)),
    }


def adamw_course_check(modules):
    """The course's optimizer_test.py: Linear(3, 2, bias=False) trained for 1000 steps in float32."""
    AdamW = _class(modules, "optimizer", "AdamW")
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    linear = torch.nn.Linear(3, 2, bias=False)
    optimizer = AdamW(linear.parameters(), lr=1e-3, weight_decay=1e-4, correct_bias=True)
    for _ in range(1000):
        optimizer.zero_grad()
        x = torch.tensor(rng.uniform(size=[3]), dtype=torch.float32)
        loss = ((torch.stack([x[0] + x[1], -x[2]]) - linear(x)) ** 2).sum()
        loss.backward()
        optimizer.step()
    return linear.weight.detach()


def adamw_trajectory(modules, start, inputs, targets, lr, betas, eps, weight_decay, correct_bias):
    """A float64 least-squares fit, one AdamW step per input row; returns the weights after each step."""
    AdamW = _class(modules, "optimizer", "AdamW")
    weight = torch.nn.Parameter(start.clone())
    optimizer = AdamW([weight], lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, correct_bias=correct_bias)
    history = []
    for x, y in zip(inputs, targets):
        optimizer.zero_grad()
        ((weight @ x - y) ** 2).sum().backward()
        optimizer.step()
        history.append(weight.detach().clone())
    return torch.stack(history)
