"""Graded cases of CMU 11-711 minbert (bert.py, classifier.py, optimizer.py, prediction files).

Every call goes through minbert_harness.py (a support file of the sandbox), which builds the
student's module from the starter's classes, loads weights the grader chose by the starter's
parameter names, and calls one method. Small random BERTs run in float64, so tolerances are
tight; the pretrained check runs MiniLM in float32 with the course's sanity-check tolerance.

Point split, after the course rubric (B+ both checks pass, A- results present, A accuracy
comparable to the reference): 73 points of code (the sanity check 10 and the optimizer check 8
among them, dropout in train mode 8), 40 points of prediction files (format and alignment 12,
accuracy 28; reference accuracies and bands are in manifest.toml).
"""
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from grader.cases import In, Randn, StudentError, Value, Verdict
from grader.compare import Comparison, Tolerance
from grader.harness import HarnessCall

from .predictions import Predictions

# every call goes through the assignment's harness (a support file of the sandbox)
harness = partial(HarnessCall, module="minbert_harness")
BERT, CLASSIFIER, OPTIMIZER = ("bert",), ("classifier", "bert"), ("optimizer",)
COURSE_SANITY = Tolerance(rtol=1e-3, atol=1e-5)        # the course's sanity_check.py
COURSE_ALLCLOSE = Tolerance(rtol=1e-5, atol=1e-8)      # torch.allclose defaults (optimizer_test.py)
ADAMW_TOLERANCE = Tolerance(rtol=1e-4, atol=1e-6)


def config(hidden=32, heads=4, layers=2, intermediate=64, vocab=97, positions=40, dropout=0.1):
    return {"hidden_size": hidden, "num_attention_heads": heads, "num_hidden_layers": layers,
            "intermediate_size": intermediate, "vocab_size": vocab, "max_position_embeddings": positions,
            "type_vocab_size": 2, "hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout,
            "layer_norm_eps": 1e-12, "pad_token_id": 0}


@dataclass(frozen=True)
class BertWeights:
    """Seeded float64 weights under the starter's parameter names, for one module of `config`.

    Scales are chosen so that attention is far from uniform and LayerNorm's affine part matters:
    a mistake then changes the output by much more than float64 rounding."""
    config: tuple            # tuple(config.items()), to stay hashable
    module: str              # "attention", "layer" or "model"

    def build(self, generator: torch.Generator) -> dict:
        cfg = dict(self.config)
        h, i = cfg["hidden_size"], cfg["intermediate_size"]
        weights = {}

        def normal(name, *shape, scale):
            weights[name] = torch.randn(shape, generator=generator, dtype=torch.float64) * scale

        def linear(name, n_out, n_in):
            normal(f"{name}.weight", n_out, n_in, scale=n_in ** -0.5)
            normal(f"{name}.bias", n_out, scale=0.1)

        def layer_norm(name):
            normal(f"{name}.weight", h, scale=0.2)
            weights[f"{name}.weight"] += 1.0
            normal(f"{name}.bias", h, scale=0.1)

        def attention(prefix):
            for part in ("query", "key", "value"):
                linear(f"{prefix}{part}", h, h)

        def layer(prefix):
            attention(f"{prefix}self_attention.")
            linear(f"{prefix}attention_dense", h, h)
            layer_norm(f"{prefix}attention_layer_norm")
            linear(f"{prefix}interm_dense", i, h)
            linear(f"{prefix}out_dense", h, i)
            layer_norm(f"{prefix}out_layer_norm")

        if self.module == "attention":
            attention("")
        elif self.module == "layer":
            layer("")
        else:
            normal("word_embedding.weight", cfg["vocab_size"], h, scale=1.0)
            normal("pos_embedding.weight", cfg["max_position_embeddings"], h, scale=0.5)
            normal("tk_type_embedding.weight", cfg["type_vocab_size"], h, scale=0.5)
            layer_norm("embed_layer_norm")
            for n in range(cfg["num_hidden_layers"]):
                layer(f"bert_layers.{n}.")
            linear("pooler_dense", h, h)
        return weights


@dataclass(frozen=True)
class Mask:
    """A [bs, seq] 1/0 attention mask: row b has `lengths[b]` real tokens, then padding."""
    lengths: tuple
    seq: int

    def build(self, generator: torch.Generator) -> torch.Tensor:
        return (torch.arange(self.seq)[None, :] < torch.tensor(self.lengths)[:, None]).long()


@dataclass(frozen=True)
class TokenIds:
    """Random token ids with [CLS]-like 101 % vocab first and the padding id 0 after `lengths`."""
    lengths: tuple
    seq: int
    vocab: int

    def build(self, generator: torch.Generator) -> torch.Tensor:
        ids = torch.randint(1, self.vocab, (len(self.lengths), self.seq), generator=generator)
        ids[:, 0] = 101 % self.vocab
        return ids * Mask(self.lengths, self.seq).build(generator)


def shown(what: str, cfg: dict | None = None, train: bool = False) -> str:
    size = f", hidden {cfg['hidden_size']}, {cfg['num_attention_heads']} head(s), float64" if cfg else ""
    return what + size + (", train mode" if train else ", eval mode")


def weights(cfg: dict, module: str) -> BertWeights:
    return BertWeights(tuple(cfg.items()), module)


def heads_input(cfg, bs, seq):
    return Randn(bs, cfg["num_attention_heads"], seq, cfg["hidden_size"] // cfg["num_attention_heads"])


SMALL = config()
THREE_HEADS = config(hidden=24, heads=3)
ONE_HEAD = config(hidden=16, heads=1)
LENGTHS, SEQ = (7, 4, 1), 7


def attention_inputs(cfg, lengths=LENGTHS, seq=SEQ):
    bs = len(lengths)
    return {"W": weights(cfg, "attention"), "K": heads_input(cfg, bs, seq), "Q": heads_input(cfg, bs, seq),
            "V": heads_input(cfg, bs, seq), "mask": Mask(lengths, seq)}


def attention_call(cfg, train=False):
    version = {"starter": "auto"} if train else {}
    return harness("self_attention", ("K", "Q", "V", "mask"), {"config": cfg, "weights": In("W"), "train": train, **version},
                   needs=BERT, shows=shown("BertSelfAttention.attention(key, query, value, extended mask)", cfg, train))


def hidden_inputs(cfg, module, lengths=LENGTHS, seq=SEQ):
    return {"W": weights(cfg, module), "X": Randn(len(lengths), seq, cfg["hidden_size"]), "mask": Mask(lengths, seq)}


LAYER_CALLS = {"self_attention_forward": "BertSelfAttention.forward(hidden_states, extended mask)",
               "layer": "BertLayer.forward(hidden_states, extended mask)"}


def layer_call(target, cfg, train=False, args=("X", "mask"), **kwargs):
    what = LAYER_CALLS.get(target) or (f"BertLayer.add_norm(input, output, {kwargs['sublayer']}_dense, "
                                       f"{kwargs['sublayer']}_dropout, {kwargs['sublayer']}_layer_norm)")
    if train and target == "layer":
        kwargs["starter"] = "auto"
    return harness(target, args, {"config": cfg, "weights": In("W"), "train": train, **kwargs},
                   needs=BERT, shows=shown(what, cfg, train))


def add_norm_inputs(cfg, sublayer):
    width = cfg["hidden_size"] if sublayer == "attention" else cfg["intermediate_size"]
    return {"W": weights(cfg, "layer"), "X": Randn(3, SEQ, cfg["hidden_size"]), "Y": Randn(3, SEQ, width)}


def model_inputs(cfg, lengths=LENGTHS, seq=SEQ):
    return {"W": weights(cfg, "model"), "ids": TokenIds(lengths, seq, cfg["vocab_size"]), "mask": Mask(lengths, seq)}


MODEL_CALLS = {"embed": "BertModel.embed(input_ids)", "model": "BertModel.forward(input_ids, attention_mask)",
               "model_gradients": "BertModel.forward(input_ids, attention_mask), then the gradients of "
                                  "sum(last_hidden_state * dOut) w.r.t. five parameters"}


def model_call(target="model", args=("ids", "mask"), cfg=SMALL, **kwargs):
    return harness(target, args, {"config": cfg, "weights": In("W"), **kwargs}, needs=BERT,
                   shows=shown(MODEL_CALLS[target] + f", {cfg['num_hidden_layers']} layers", cfg, kwargs.get("train", False)))


# Our own sentences (not course data): lower and upper case, punctuation, an accent, a long word.
# Each case draws six with its seed: staff runs draw other sentences than the public ones, whose
# expected outputs ship in the student bundle's golden file.
SENTENCE_POOL = (
    "A warm, funny and thoroughly engaging film.",
    "The plot never quite comes together , but the cast is charming .",
    "I wouldn't recommend it to anyone.",
    "Café scenes aside, it's a forgettable, overlong melodrama!",
    "Unquestionably one of the year's best.",
    "Dull.",
    "An ambitious, sprawling story that rarely loses its footing.",
    "The dialogue is clumsy and the jokes land with a thud .",
    "Two hours I will never get back.",
    "Its naïve charm wins you over by the final reel.",
    "Gorgeous photography cannot rescue a hollow script.",
    "A quiet, patient film about grief, and a moving one.",
    "Overwrought , overlong and underwhelming .",
    "The best ensemble cast I've seen in years!",
    "It is neither clever enough nor funny enough to matter.",
    "Surprisingly tender.",
    "The director's self-indulgence is exhausting.",
    "Every frame feels alive, every performance lived-in.",
    "What starts as satire curdles into something mean-spirited.",
    "A perfectly serviceable thriller, no more and no less.",
    "Incomprehensible from beginning to end.",
    "I laughed, I cried, and then I laughed again.",
    "Its message is admirable; its execution, tedious.",
    "An instant classic of the genre.",
)


@dataclass(frozen=True)
class Sentences:
    """`k` sentences of the pool, drawn with the case's seed (public or staff)."""
    k: int = 6

    def build(self, generator: torch.Generator) -> list[str]:
        order = torch.randperm(len(SENTENCE_POOL), generator=generator)[: self.k]
        return [SENTENCE_POOL[i] for i in order.tolist()]


@dataclass
class CourseFixture(Value):
    """A Value judged against an array the course recorded (a file of the data directory, in
    both modes) instead of the reference's value: the course's own check, exactly as it runs."""
    fixture: str = ""

    def expected_value(self, ctx, inputs):
        path = Path(ctx.data_dir or ".") / self.fixture
        if ctx.data_dir is None or not path.is_file():
            raise RuntimeError(f"the course fixture {self.fixture} is not in the data directory {ctx.data_dir}")
        return torch.tensor(np.load(path))


def trajectory_inputs(steps=60):
    return {"start": Randn(2, 3), "inputs": Randn(steps, 3), "targets": Randn(steps, 2)}


def trajectory_call(lr=0.02, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, correct_bias=True):
    settings = {"lr": lr, "betas": list(betas), "eps": eps, "weight_decay": weight_decay, "correct_bias": correct_bias}
    return harness("adamw_trajectory", ("start", "inputs", "targets"), settings,
                   needs=OPTIMIZER, shows=f"AdamW({', '.join(f'{k}={v}' for k, v in settings.items())}).step() once per "
                                       "row of a float64 least-squares fit; the weights after every step")


# What the harness may report as the starter a student's classes follow (see minbert_harness.py).
ATTENTION_STARTERS = ("with attention dropout",
                      "without attention dropout (the Fall 2023 starter has no BertSelfAttention.dropout)")
CLASSIFIER_STARTERS = ("11-711 (BertSentClassifier freezes BERT for 'pretrain')",
                       "11-747 (forward takes token_type_ids; BERT is frozen in the training script)",
                       "11-711 Fall 2023 (the option that freezes BERT is called 'freeze')")


@dataclass
class StarterAware(Value):
    """A call whose right answer depends on the starter version the student wrote for.

    The harness reports the version the student's classes follow (`starters[0]` is the current
    one); the reference is then run as that version asked, so a student is judged by the handout
    they had: no attention dropout for the Fall 2023 starter, no freezing inside the classifier
    for the 11-747 one. Notes the harness adds (a config attribute the course does not set, read
    as None) reach the feedback."""
    starters: tuple = ()

    def compare(self, expected, actual, reveal: bool = True, equal_nan: bool = False):
        if type(actual) is not dict or "output" not in actual:
            return Comparison(False, 0.0, f"output: the harness returned {type(actual).__name__}")
        return super().compare(expected["output"], actual["output"], reveal=reveal, equal_nan=equal_nan)

    def run(self, ctx) -> Verdict:
        inputs = self.built_inputs(ctx)
        called = "called " + self.call.describe(inputs)
        timeout = ctx.timeout(self, ctx.reference_seconds(self, inputs))
        try:
            actual, printed = ctx.student(self, self.call, inputs, timeout=timeout)
        except StudentError as exc:
            return self.failed(str(exc), called=called, student_output=getattr(exc, "output", ""))
        version = actual.get("starter") if type(actual) is dict else None
        if version not in self.starters:
            return self.failed("the harness could not tell which starter your code follows", called=called,
                               student_output=printed)
        expected = self._expected(ctx, inputs, version)
        notes = [n for n in (actual.get("notes") or []) if type(n) is str][:5]
        if version != self.starters[0]:
            notes.insert(0, f"judged as the starter you wrote for asked: {version}")
        result = self.compare(expected, actual, reveal=self.public)
        shared = {"called": called, "notes": tuple(notes), "student_output": printed}
        if result.ok:
            return Verdict(self.points, self.points, result.message, **shared)
        score = self.points * result.fraction if self.partial else 0.0
        return Verdict(score, self.points, result.message, feedback=self.feedback,
                       hint=ctx.hint(self, inputs, actual), **shared)

    def _expected(self, ctx, inputs, version: str):
        if version == self.starters[0] or ctx.mode != "staff":
            return ctx.expected(self, inputs)
        return ctx.reference(self, replace(self.call, kwargs={**self.call.kwargs, "starter": version}), inputs)


def classifier_call(option, num_labels=5):
    return harness("classifier", (), {"sentences": In("sentences"), "num_labels": num_labels, "option": option},
                   needs=CLASSIFIER,
                   shows=f"BertSentClassifier(num_labels={num_labels}, option={option!r}) on {Sentences.k} tokenized "
                      "sentences, eval mode")


SANITY_CASE = "sanity check: pretrained MiniLM on real sentences"
ADAMW_SETTINGS = ("AdamW: no weight decay, other betas and eps", "AdamW: weight decay")

DROPOUT_FEEDBACK = ("train mode, with the grader's deterministic dropout (the same keep-mask for a tensor of a "
                    "given shape in your code and in the reference)")

# The sentence of the course's material each case checks (README.md and structure.md of the 11-711
# starter, the to-do comments of its bert.py and optimizer.py, sanity_check.py, optimizer_test.py).
ATTENTION_EQUATION = ("structure.md, BertSelfAttention: \"split the vectors for multi-head attention; follow the "
                      "equation to compute the attended output of each head; concatenate multi-head attention "
                      "outputs to recover the original shape\"; bert.py: \"before normalizing the scores, use "
                      "the attention mask to mask out the padding token scores\"")
ATTENTION_DROPOUT = ("bert.py, BertSelfAttention.__init__: self.dropout = nn.Dropout(config.attention_probs_dropout_prob),"
                     " \"this dropout is applied to normalized attention scores following the original "
                     "implementation of transformer\" (not in the Fall 2023 starter, which is judged without it)")
ADD_NORM = ("bert.py, BertLayer.add_norm: \"dense_layer, dropout: the sublayer; ln_layer: layer norm that takes "
            "input+sublayer(output)\"")
LAYER = ("bert.py, BertLayer.forward: \"1. a multi-head attention layer (BertSelfAttention) 2. a add-norm that takes "
         "the output of BertSelfAttention and the input of BertSelfAttention 3. a feed forward layer 4. a add-norm "
         "that takes the output of feed forward layer and the input of feed forward layer\"")
EMBED = ("bert.py, BertModel.embed: \"get word embedding from self.word_embedding ... get position index and position "
         "embedding from self.pos_embedding ... add three embeddings together ... layer norm and dropout\"")
MODEL_OUTPUTS = ("structure.md, BertModel: \"The desired outputs are 1. last_hidden_state ... 2. pooler_output: the "
                 "[CLS] token embedding\"")
FINETUNE = "structure.md, classifier.py: \"fine-tune the Bert model on the downstream tasks\" (gradients must reach BERT)"
SANITY = "README.md, Grading: \"B+: All missing pieces are implemented and pass tests in sanity_check.py\""
CLASSIFY = ("structure.md, BertSentClassifier: \"encode the sentences using BERT to obtain the pooled output ... "
            "classify the sentence by applying dropout to the pooled-output and project it using a linear layer\"; "
            "classifier.py trains it with F.nll_loss (log-probabilities)")
FREEZE = ("structure.md, BertSentClassifier: \"adjust the model parameters depending on whether we are pre-training "
          "or fine-tuning BERT\" (the 11-747 starter froze BERT in the training script: not judged there)")
OPTIMIZER_TEST = ("README.md, Grading: \"B+: ... pass tests in ... optimizer_test.py (optimizer implementation)\"")
ADAM_STEP = ("optimizer.py, step: \"Access hyperparameters from the group dictionary ... Update first and second "
             "moments of the gradients ... Bias correction ... the efficient version\"")
WEIGHT_DECAY = ("optimizer.py, step: \"Add weight decay after the main gradient-based updates. Please note that the "
                "learning rate should be incorporated into this update.\"")
PREDICTIONS = ("README.md, Grading: \"A: ... code that achieves comparable accuracy to our reference "
               "implementation\"; Submission: the four prediction files")
# correct_bias=False is in AdamW's signature but no to-do or course check sets it: feedback only
CORRECT_BIAS_FEEDBACK = ("feedback only (0 points unless the course's manifest gives it points): the handout never "
                         "asks for correct_bias=False; this shows what your step() does when it is passed")

CASES = [
    # ---- BertSelfAttention.attention (eval: dropout off)
    Value("attention: 4 heads, padding mask", 4, call=attention_call(SMALL), inputs=attention_inputs(SMALL),
          handout=ATTENTION_EQUATION),
    Value("attention: 3 heads", 3, call=attention_call(THREE_HEADS), inputs=attention_inputs(THREE_HEADS),
          handout=ATTENTION_EQUATION),
    Value("attention: 1 head, no padding", 2, visibility="hidden", call=attention_call(ONE_HEAD),
          inputs=attention_inputs(ONE_HEAD, lengths=(5, 5), seq=5), handout=ATTENTION_EQUATION),
    Value("self-attention forward (transform + attention)", 2, handout=ATTENTION_EQUATION,
          call=layer_call("self_attention_forward", SMALL), inputs=hidden_inputs(SMALL, "attention")),
    StarterAware("attention in train mode: dropout on the probabilities", 2, feedback=DROPOUT_FEEDBACK,
                 call=attention_call(SMALL, train=True), inputs=attention_inputs(SMALL), handout=ATTENTION_DROPOUT,
                 starters=ATTENTION_STARTERS),

    # ---- BertLayer
    Value("add_norm after attention", 3, call=layer_call("add_norm", SMALL, args=("X", "Y"), sublayer="attention"),
          inputs=add_norm_inputs(SMALL, "attention"), handout=ADD_NORM),
    Value("add_norm after the feed-forward", 2, call=layer_call("add_norm", SMALL, args=("X", "Y"), sublayer="out"),
          inputs=add_norm_inputs(SMALL, "out"), handout=ADD_NORM),
    Value("add_norm in train mode: dropout before the residual sum", 2, feedback=DROPOUT_FEEDBACK, handout=ADD_NORM,
          call=layer_call("add_norm", SMALL, train=True, args=("X", "Y"), sublayer="attention"),
          inputs=add_norm_inputs(SMALL, "attention")),
    Value("BertLayer forward, padding mask", 5, call=layer_call("layer", SMALL), inputs=hidden_inputs(SMALL, "layer"),
          handout=LAYER),
    Value("BertLayer forward, 3 heads", 2, visibility="hidden", call=layer_call("layer", THREE_HEADS),
          inputs=hidden_inputs(THREE_HEADS, "layer"), handout=LAYER),
    StarterAware("BertLayer forward in train mode", 2, feedback=DROPOUT_FEEDBACK, handout=LAYER,
                 call=layer_call("layer", SMALL, train=True), inputs=hidden_inputs(SMALL, "layer"),
                 starters=ATTENTION_STARTERS),

    # ---- BertModel
    Value("embed", 4, call=model_call("embed", ("ids",)), inputs=model_inputs(SMALL), handout=EMBED),
    Value("embed in train mode: dropout once, after LayerNorm", 2, feedback=DROPOUT_FEEDBACK, handout=EMBED,
          call=model_call("embed", ("ids",), train=True), inputs=model_inputs(SMALL)),
    Value("BertModel forward: last hidden state and pooler", 5, partial=True, call=model_call(),
          inputs=model_inputs(SMALL), handout=MODEL_OUTPUTS),
    Value("BertModel gradients", 3, visibility="hidden", partial=True, handout=FINETUNE,
          call=model_call("model_gradients", ("ids", "mask", "dOut")),
          inputs={**model_inputs(SMALL), "dOut": Randn(len(LENGTHS), SEQ, SMALL["hidden_size"])}),
    Value(SANITY_CASE, 10, partial=True, tolerance=COURSE_SANITY, inputs={"sentences": Sentences()}, handout=SANITY,
          call=harness("pretrained_model", (), {"sentences": In("sentences")},
                       needs=BERT, shows=f"BertModel.from_pretrained('bert-base-uncased').forward on {Sentences.k} "
                                      "tokenized sentences, float32, eval mode"),
          timeout=90, feedback="BertModel.from_pretrained('bert-base-uncased') loads local MiniLM-L6-H384 weights; "
                               "compared on real tokens with the course's tolerance (atol 1e-5, rtol 1e-3)"),

    # ---- classifier.py (on a random BERT of bert-base's width: a head sized 768 fits)
    StarterAware("classifier: log-probabilities of shape [batch, labels]", 4, partial=True, handout=CLASSIFY,
                 call=classifier_call("finetune"), inputs={"sentences": Sentences()}, timeout=90,
                 starters=CLASSIFIER_STARTERS),
    StarterAware("classifier: pretrain freezes BERT, trains the head", 2, handout=FREEZE,
                 call=classifier_call("pretrain", num_labels=2), inputs={"sentences": Sentences()}, timeout=90,
                 starters=CLASSIFIER_STARTERS),

    # ---- optimizer.py
    # An optimizer that only replays the fixture's numbers must not earn it: it counts only when
    # the optimizer also matches the reference on the other settings.
    CourseFixture("AdamW: the course's optimizer_test.npy", 8, tolerance=COURSE_ALLCLOSE, requires=ADAMW_SETTINGS,
                  call=harness("adamw_course_check", needs=OPTIMIZER,
                               shows="the course's optimizer_test.py with your AdamW"),
                  fixture="optimizer_test.npy", handout=OPTIMIZER_TEST,
                  feedback="the course's optimizer_test.py: Linear(3, 2), 1000 steps, lr 1e-3, weight_decay 1e-4, "
                   "torch.allclose against optimizer_test.npy"),
    # Settings where the accepted variants (decay before the update, m_hat/v_hat bias correction)
    # stay within 1e-5 of the reference and every AdamW mutant is off by 1e-3 or more.
    Value("AdamW: no weight decay, other betas and eps", 2, tolerance=ADAMW_TOLERANCE, handout=ADAM_STEP,
          call=trajectory_call(lr=1e-3, betas=(0.8, 0.99), eps=1e-5), inputs=trajectory_inputs()),
    Value("AdamW: weight decay", 2, tolerance=ADAMW_TOLERANCE, handout=WEIGHT_DECAY,
          call=trajectory_call(lr=1e-3, weight_decay=0.1), inputs=trajectory_inputs()),
    Value("AdamW: correct_bias=False", 0, visibility="hidden", tolerance=ADAMW_TOLERANCE,
          feedback=CORRECT_BIAS_FEEDBACK, call=trajectory_call(lr=1e-3, correct_bias=False),
          inputs=trajectory_inputs(40)),

    # ---- prediction files (judged in the parent against the labels in the data directory)
    Predictions("sst-dev-output.txt", 10, file="sst-dev-output.txt", labels="sst-dev.txt", handout=PREDICTIONS),
    Predictions("sst-test-output.txt", 10, file="sst-test-output.txt", labels="sst-test.txt", handout=PREDICTIONS),
    Predictions("cfimdb-dev-output.txt", 10, file="cfimdb-dev-output.txt", labels="cfimdb-dev.txt", handout=PREDICTIONS),
    Predictions("cfimdb-test-output.txt", 10, file="cfimdb-test-output.txt", labels="cfimdb-test.txt",
                handout=PREDICTIONS),
]
