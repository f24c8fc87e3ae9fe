"""How the grader calls a student's minbert files: build the module the course's code would
build, load weights the grader chose, call one method, return plain tensors.

This file is a support module of the sandbox: the same code runs on the student's modules (in
the child) and on the reference's or a mutant's (in the parent), so both are called exactly
alike. Each function receives `modules` ({"bert": module, "classifier": ..., ...}) first.

Dropout is checked in train mode with the harness kit's deterministic stand-in (grader/harness.py):
the student's code and the reference drop the same entries whichever dropout call they use.
"""
from __future__ import annotations

import inspect
from types import SimpleNamespace

import numpy as np
import torch

import base_bert
import config as bert_config
import tokenizer as bert_tokenizer
from utils import get_extended_attention_mask

from grader.harness import HarnessError, build, run_deterministic, student_class

COURSE_NAME = "bert-base-uncased"


def _build(modules: dict, module: str, name: str, config: dict, weights: dict, train: bool):
    """The student's `name` of the starter's config, in float64, with the grader's weights."""
    return build(student_class(modules, module, name), bert_config.BertConfig(**config), weights=weights,
                 train=train, what=name)


# ---- the calls the cases make ------------------------------------------------------------------

# ---- starter versions ---------------------------------------------------------------------------
#
# The starter changed between course years, and a student is judged by the one they wrote for.
# A call made with starter="auto" (the student's) says which version the student's classes follow;
# the reference is then called with that version named, so that both sides are judged alike.

WITH_ATTENTION_DROPOUT = "with attention dropout"
WITHOUT_ATTENTION_DROPOUT = "without attention dropout (the Fall 2023 starter has no BertSelfAttention.dropout)"
CLASSIFIER_FREEZES = "11-711 (BertSentClassifier freezes BERT for 'pretrain')"
FREEZE_OPTION = "11-711 Fall 2023 (the option that freezes BERT is called 'freeze')"
SCRIPT_FREEZES = "11-747 (forward takes token_type_ids; BERT is frozen in the training script)"


def _attention_starter(attention, starter: str) -> str:
    if starter != "auto":
        return starter
    return WITH_ATTENTION_DROPOUT if isinstance(getattr(attention, "dropout", None), torch.nn.Module) \
        else WITHOUT_ATTENTION_DROPOUT


def _as_starter(attention, starter: str) -> str:
    """Decide the version; for the reference called as an older starter, remove what it lacks."""
    version = _attention_starter(attention, starter)
    if version == WITHOUT_ATTENTION_DROPOUT and isinstance(getattr(attention, "dropout", None), torch.nn.Module):
        attention.dropout = torch.nn.Identity()
    return version


def self_attention(modules, key, query, value, attention_mask, config, weights, train=False, starter=None):
    """BertSelfAttention.attention(key, query, value, attention_mask) -> [bs, seq, hidden]
    (with `starter`: {"output": ..., "starter": the version judged})."""
    layer = _build(modules, "bert", "BertSelfAttention", config, weights, train)
    extended = get_extended_attention_mask(attention_mask, torch.float64)
    version = _as_starter(layer, starter) if starter else None
    output = run_deterministic(lambda: layer.attention(key, query, value, extended))
    return {"output": output, "starter": version} if starter else output


def self_attention_forward(modules, hidden_states, attention_mask, config, weights, train=False):
    """BertSelfAttention.forward(hidden_states, extended mask) -> [bs, seq, hidden]."""
    layer = _build(modules, "bert", "BertSelfAttention", config, weights, train)
    extended = get_extended_attention_mask(attention_mask, torch.float64)
    return run_deterministic(lambda: layer(hidden_states, extended))


def add_norm(modules, input, output, config, weights, sublayer="attention", train=False):
    """BertLayer.add_norm with the layer's own sublayer ("attention" or "out") modules."""
    layer = _build(modules, "bert", "BertLayer", config, weights, train)
    parts = {"attention": (layer.attention_dense, layer.attention_dropout, layer.attention_layer_norm),
             "out": (layer.out_dense, layer.out_dropout, layer.out_layer_norm)}[sublayer]
    return run_deterministic(lambda: layer.add_norm(input, output, *parts))


def layer(modules, hidden_states, attention_mask, config, weights, train=False, starter=None):
    """BertLayer.forward(hidden_states, extended mask) -> [bs, seq, hidden]
    (with `starter`: {"output": ..., "starter": the version judged})."""
    block = _build(modules, "bert", "BertLayer", config, weights, train)
    extended = get_extended_attention_mask(attention_mask, torch.float64)
    attention = getattr(block, "self_attention", None)
    version = _as_starter(attention, starter) if starter else None
    output = run_deterministic(lambda: block(hidden_states, extended))
    return {"output": output, "starter": version} if starter else output


def embed(modules, input_ids, config, weights, train=False):
    """BertModel.embed(input_ids) -> [bs, seq, hidden]."""
    model = _build(modules, "bert", "BertModel", config, weights, train)
    return run_deterministic(lambda: model.embed(input_ids))


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
    bert = student_class(modules, "bert", "BertModel").from_pretrained(COURSE_NAME)
    bert.eval()
    with torch.no_grad():
        return _zero_padding(bert(input_ids, attention_mask), attention_mask)


# The classifier's structure is checked on a seeded random BERT of bert-base's width, as the course
# used (a classifier written for hidden size 768 fits), with two layers and a small vocabulary
# (token ids are folded into it): cheap, and no pretrained weights are needed for structure.
BERT_BASE_WIDTH = {"hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072, "num_hidden_layers": 2,
                   "vocab_size": 1024, "max_position_embeddings": 512, "type_vocab_size": 2}


class LenientConfig(SimpleNamespace):
    """The course's classifier config; an attribute a student's own training script added (say
    `freeze_lm`) reads as None instead of crashing, and is reported."""

    def __init__(self, unset_read: list | None = None, **entries):
        super().__init__(**entries)
        object.__setattr__(self, "_unset_read", [] if unset_read is None else unset_read)

    def __getattr__(self, name):
        if name.startswith("__") or name == "_unset_read":
            raise AttributeError(name)
        if name not in self._unset_read:
            self._unset_read.append(name)
        return None


def _bert_frozen(model) -> bool:
    bert = [p for name, p in model.named_parameters() if name.startswith("bert.")]
    return bool(bert) and not any(p.requires_grad for p in bert)


def _build_classifier(modules, settings):
    with base_bert.random_stand_in(BERT_BASE_WIDTH, seed=0):
        return student_class(modules, "classifier", "BertSentClassifier")(settings)


def _classifier(modules, settings, starter: str):
    """(the model to judge, the starter version it follows). The Fall 2023 starter renamed the
    option 'pretrain' to 'freeze': a classifier that freezes (or builds) only for 'freeze'
    follows it."""
    try:
        model, failure = _build_classifier(modules, settings), None
    except Exception as exc:    # e.g. a classifier that accepts only 'freeze' and 'finetune'
        model, failure = None, exc
    if starter != "auto" and model is not None:
        return model, starter
    if model is not None and "token_type_ids" in inspect.signature(model.forward).parameters:
        return model, SCRIPT_FREEZES
    if settings.option == "pretrain" and (model is None or not _bert_frozen(model)):
        torch.manual_seed(0)
        entries = {k: v for k, v in vars(settings).items() if not k.startswith("_")}
        try:
            renamed = _build_classifier(modules, LenientConfig(settings._unset_read, **{**entries, "option": "freeze"}))
        except Exception:
            renamed = None
        if renamed is not None and _bert_frozen(renamed):
            return renamed, FREEZE_OPTION
    if failure is not None:
        raise failure
    return model, CLASSIFIER_FREEZES


def _classifier_forward(model, input_ids, attention_mask):
    """The 11-711 starter's forward(input_ids, attention_mask), or that of its 11-747
    predecessor (spring 2021), which also took token_type_ids in the middle."""
    parameters = list(inspect.signature(model.forward).parameters)
    if "token_type_ids" in parameters:
        return model(input_ids, torch.zeros_like(input_ids), attention_mask)
    return model(input_ids, attention_mask)


def classifier(modules, sentences, num_labels, option, starter="auto"):
    """Build BertSentClassifier as the course's script does (config as the course's, BERT of
    bert-base's width); report what the cases judge: the output's shape, whether rows are
    log-probabilities, and which parameters train. Where the starter froze BERT in the training
    script (11-747), which parameters train is not the classifier's to decide: not reported."""
    torch.manual_seed(0)
    settings = LenientConfig(hidden_dropout_prob=0.3, num_labels=num_labels, hidden_size=BERT_BASE_WIDTH["hidden_size"],
                             data_dir=".", option=option)
    model, version = _classifier(modules, settings, starter)
    model.eval()
    input_ids, attention_mask = _tokenize(sentences)
    input_ids = input_ids % BERT_BASE_WIDTH["vocab_size"]
    with torch.no_grad():
        log_probs = _classifier_forward(model, input_ids, attention_mask)
    if not isinstance(log_probs, torch.Tensor):
        raise HarnessError(f"BertSentClassifier.forward returned {type(log_probs).__name__}, not a tensor")
    bert_params = [p for name, p in model.named_parameters() if name.startswith("bert.")]
    other_params = [p for name, p in model.named_parameters() if not name.startswith("bert.")]
    # rows of log-probabilities: exp sums to 1 (float32 rounding allowed), hence all <= 0
    row_sums = torch.logsumexp(log_probs.double(), dim=-1) if log_probs.dim() == 2 else None
    judged = {
        "shape": torch.tensor(list(log_probs.shape)),
        "rows are log-probabilities": torch.tensor(row_sums is not None and bool((row_sums.abs() < 1e-4).all())),
        "rows are probabilities": torch.tensor(log_probs.dim() == 2 and bool((log_probs >= 0).all())
                                               and bool(((log_probs.double().sum(-1) - 1).abs() < 1e-4).all())),
        "head trains": torch.tensor(bool(other_params) and all(p.requires_grad for p in other_params)),
    }
    if version != SCRIPT_FREEZES:
        judged["BERT trains (any, all)"] = torch.tensor([any(p.requires_grad for p in bert_params),
                                                         all(p.requires_grad for p in bert_params)])
    notes = [f"your classifier read config.{name}, which the course's config does not set (read as None)"
             for name in settings._unset_read]
    return {"output": judged, "starter": version, "notes": notes}


def adamw_course_check(modules):
    """The course's optimizer_test.py: Linear(3, 2, bias=False) trained for 1000 steps in float32."""
    AdamW = student_class(modules, "optimizer", "AdamW")
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
    AdamW = student_class(modules, "optimizer", "AdamW")
    weight = torch.nn.Parameter(start.clone())
    optimizer = AdamW([weight], lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, correct_bias=correct_bias)
    history = []
    for x, y in zip(inputs, targets):
        optimizer.zero_grad()
        ((weight @ x - y) ** 2).sum().backward()
        optimizer.step()
        history.append(weight.detach().clone())
    return torch.stack(history)
