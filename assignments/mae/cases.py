"""Graded cases of the CS182 ViT / masked autoencoder homework.

Every function and method runs in the sandbox on seeded inputs, with weights the grader draws,
against the reference, judged with the course's own metric: the relative error
max |x - y| / max(1e-8, |x| + |y|), at the notebook's tolerances (1e-3; the encoder's embeddings
0.008, the decoder 0.03, the representation 0.01). Inputs are float64 (so the metric has room to
spare), and again float32 where a dtype slip would show. Indices (ids_restore) must be exact. A
mask may have any dtype (the course leaves it open) but must use the course's convention,
1 = masked.

The weights are drawn so that every part matters: position encodings, the CLS token and the mask
token at scale 0.5 (the notebook's 0.02 init would hide a missing one under the tolerance).

With the course's inputs file configured ([reported] course_inputs), the outputs the student's
notebook saved in autograder.pt are graded as the course grades them, and checked against what
the submitted code computes on the same inputs (grader/reported.py). The accuracies the notebook
reports are their own cases, marked self-reported.
"""
from dataclasses import dataclass

import torch

from grader.cases import Call, Randn, StudentError, Value
from grader.compare import Comparison, Tolerance
from grader.harness import HarnessCall
from grader.reported import ReportedOutput, ReportedScore
from grader.verdict import Verdict

COURSE = Tolerance(relative=1e-3)
ENCODER = Tolerance(relative=0.008)
DECODER = Tolerance(relative=0.03)
REPRESENTATION = Tolerance(relative=0.01)

# small models for the code cases: 16 x 16 images, 4 x 4 patches of 4 x 4 pixels, keep 4 of 16
SMALL = {"encoder_dim": 32, "decoder_dim": 16, "encoder_layers": 2, "decoder_layers": 1, "encoder_ffn": 64,
         "decoder_ffn": 32, "patch_size": 4, "num_patches": 4, "mask_ratio": 0.75}
# the notebook's own sizes (its test cells and autograder_student.pt)
COURSE_SIZES = {"encoder_dim": 256, "decoder_dim": 128, "encoder_layers": 4, "decoder_layers": 2,
                "encoder_ffn": 1024, "decoder_ffn": 1024, "patch_size": 4, "num_patches": 8, "mask_ratio": 0.75}
VIT = {"n_classes": 5, "embedding_dim": 32, "patch_size": 4, "num_patches": 4}
CLASSES = 5


# ---- inputs -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Permutations:
    """[batch, length] long: one uniformly drawn permutation of 0..length-1 per row."""
    batch: int
    length: int

    def build(self, generator: torch.Generator) -> torch.Tensor:
        return torch.argsort(torch.rand(self.batch, self.length, generator=generator, dtype=torch.float64), dim=1)


def _draw(generator, shape, scale, dtype, offset=0.0):
    return offset + scale * torch.randn(shape, generator=generator, dtype=dtype)


def _linear(weights, generator, name, n_out, n_in, dtype):
    weights[f"{name}.weight"] = _draw(generator, (n_out, n_in), n_in ** -0.5, dtype)
    weights[f"{name}.bias"] = _draw(generator, (n_out,), 0.1, dtype)


def _layer_norm(weights, generator, name, width, dtype):
    weights[f"{name}.weight"] = _draw(generator, (width,), 0.1, dtype, offset=1.0)
    weights[f"{name}.bias"] = _draw(generator, (width,), 0.1, dtype)


def _transformer(weights, generator, prefix, width, layers, ffn, dtype):
    """The parameters of the notebook's `Transformer` (nn.TransformerEncoder) under `prefix`."""
    for i in range(layers):
        layer = f"{prefix}.transformer.layers.{i}"
        _linear(weights, generator, f"{layer}.self_attn.in_proj", 3 * width, width, dtype)
        weights[f"{layer}.self_attn.in_proj_weight"] = weights.pop(f"{layer}.self_attn.in_proj.weight")
        weights[f"{layer}.self_attn.in_proj_bias"] = weights.pop(f"{layer}.self_attn.in_proj.bias")
        _linear(weights, generator, f"{layer}.self_attn.out_proj", width, width, dtype)
        _linear(weights, generator, f"{layer}.linear1", ffn, width, dtype)
        _linear(weights, generator, f"{layer}.linear2", width, ffn, dtype)
        _layer_norm(weights, generator, f"{layer}.norm1", width, dtype)
        _layer_norm(weights, generator, f"{layer}.norm2", width, dtype)


@dataclass(frozen=True)
class ViTWeights:
    """Every parameter of ClassificationViT(n_classes, embedding_dim, patch_size, num_patches),
    whose Transformer is the notebook's default depth (4 layers, 1024 hidden)."""
    n_classes: int
    embedding_dim: int
    patch_size: int
    num_patches: int
    dtype: torch.dtype = torch.float64

    def build(self, generator: torch.Generator) -> dict:
        E, p, n, dtype, w = self.embedding_dim, self.patch_size, self.num_patches, self.dtype, {}
        _transformer(w, generator, "transformer", E, 4, 1024, dtype)
        w["cls_token"] = _draw(generator, (1, 1, E), 0.5, dtype)
        w["position_encoding"] = _draw(generator, (1, n * n + 1, E), 0.5, dtype)
        _linear(w, generator, "patch_projection", E, p * p * 3, dtype)
        _layer_norm(w, generator, "output_head.0", E, dtype)
        _linear(w, generator, "output_head.1", self.n_classes, E, dtype)
        return w


def _mae_weights(generator, config: dict, dtype) -> dict:
    Ee, Ed, p, n, w = config["encoder_dim"], config["decoder_dim"], config["patch_size"], config["num_patches"], {}
    _transformer(w, generator, "encoder", Ee, config["encoder_layers"], config["encoder_ffn"], dtype)
    _transformer(w, generator, "decoder", Ed, config["decoder_layers"], config["decoder_ffn"], dtype)
    _linear(w, generator, "encoder_input_projection", Ee, p * p * 3, dtype)
    _linear(w, generator, "decoder_input_projection", Ed, Ee, dtype)
    _linear(w, generator, "decoder_output_projection", p * p * 3, Ed, dtype)
    w["cls_token"] = _draw(generator, (1, 1, Ee), 0.5, dtype)
    w["encoder_position_encoding"] = _draw(generator, (1, n * n, Ee), 0.5, dtype)
    w["decoder_position_encoding"] = _draw(generator, (1, n * n, Ed), 0.5, dtype)
    w["masked_tokens"] = _draw(generator, (1, 1, Ed), 0.5, dtype)
    return w


@dataclass(frozen=True)
class MAEWeights:
    """Every parameter of the MaskedAutoEncoder of `config` (its encoder and decoder included)."""
    config: tuple                    # sorted items of a config dict (frozen dataclasses hash)
    dtype: torch.dtype = torch.float64

    def build(self, generator: torch.Generator) -> dict:
        return _mae_weights(generator, dict(self.config), self.dtype)


@dataclass(frozen=True)
class ClassifierWeights:
    """ClassificationMAE's parameters: the MAE's under "mae.", and the head's."""
    config: tuple
    n_classes: int
    dtype: torch.dtype = torch.float64

    def build(self, generator: torch.Generator) -> dict:
        config = dict(self.config)
        weights = {f"mae.{k}": v for k, v in _mae_weights(generator, config, self.dtype).items()}
        _layer_norm(weights, generator, "output_head.0", config["encoder_dim"], self.dtype)
        _linear(weights, generator, "output_head.1", self.n_classes, config["encoder_dim"], self.dtype)
        return weights


def frozen(config: dict) -> tuple:
    return tuple(sorted(config.items()))


def length(config: dict) -> int:
    return config["num_patches"] ** 2


def keep(config: dict) -> int:
    return length(config) - int(length(config) * config["mask_ratio"])


def images(batch: int, config: dict, dtype=torch.float64) -> Randn:
    side = config["num_patches"] * config["patch_size"]
    return Randn(batch, 3, side, side, dtype=dtype)


# ---- judging ------------------------------------------------------------------------------------

def mask_any_dtype(output):
    """(values, mask, ids_restore) with the mask as float64: the course leaves its dtype open."""
    if type(output) not in (tuple, list) or len(output) != 3:
        raise ValueError(f"got {type(output).__name__}" + (f" of length {len(output)}" if type(output) in (tuple, list)
                                                              else "") + ", expected a tuple of 3 (values, mask, ids_restore)")
    values, mask, ids_restore = output
    if type(mask) is not torch.Tensor or mask.is_complex():
        raise ValueError(f"the mask is a {type(mask).__name__}, expected a tensor of 0s and 1s")
    return values, mask.to(torch.float64), ids_restore


def mask_check(expected, actual):
    try:
        mask_any_dtype(actual)
    except ValueError as exc:
        return str(exc)
    return None


MASKED_OUTPUT = dict(derive=mask_any_dtype, derived="(values, mask as 0/1, ids_restore)", derive_check=mask_check)


@dataclass
class SequenceOrCls(Value):
    """forward_encoder_representation: the whole sequence [B, 1 + L, E] or only CLS [B, E]
    (the notebook does not say which; ClassificationMAE must agree with the choice)."""

    def compare(self, expected, actual, reveal: bool = True, equal_nan: bool = False) -> Comparison:
        if type(actual) is torch.Tensor and actual.dim() == 2 and expected.dim() == 3:
            result = super().compare(expected[:, 0], actual, reveal, equal_nan)
            return Comparison(result.ok, result.fraction, result.message + " (judged as the CLS row)")
        return super().compare(expected, actual, reveal, equal_nan)


@dataclass
class OwnPermutation(Value):
    """forward_encoder(images) with no ids_shuffle draws its own permutation: any permutation is
    right, one per image, as long as the outputs agree with it. Judged against the reference run
    on the permutation the student's own ids_restore implies, argsort(ids_restore)."""
    with_shuffle: Call = None        # the same method, given ids_shuffle (input "ids")
    length: int = 16                 # L, patches per image

    @property
    def staff_only(self) -> bool:
        return True        # the expected value depends on the student's permutation: the reference runs on it

    def run(self, ctx) -> Verdict:
        inputs = self.built_inputs(ctx)
        called = "called " + self.call.describe(inputs)
        try:
            actual, printed = ctx.student(self, self.call, inputs, timeout=ctx.timeout(self))
        except StudentError as exc:
            return self.failed(str(exc), called=called, student_output=getattr(exc, "output", ""))
        problem = _permutation_problem(actual, inputs["images"].shape[0], self.length)
        if problem:
            return self.failed(problem, called=called, student_output=printed)
        ids_shuffle = torch.argsort(actual[2], dim=1)
        expected = ctx.reference(self, self.with_shuffle, {**inputs, "ids": ids_shuffle})
        result = self.compare(expected, actual, reveal=self.public)
        if result.ok:
            return Verdict(self.points, self.points, result.message + "\n(judged on your own permutation)",
                           called=called, student_output=printed)
        return Verdict(0.0, self.points, result.message, called=called, feedback=self.feedback, student_output=printed)


def _permutation_problem(output, batch: int, length: int) -> str | None:
    """What is wrong with the ids_restore of forward_encoder's output, or None."""
    if type(output) not in (tuple, list) or len(output) != 3 or type(output[2]) is not torch.Tensor:
        return "expected (embeddings, mask, ids_restore) with ids_restore a tensor"
    ids = output[2]
    if ids.shape != (batch, length) or ids.dtype not in (torch.int64, torch.int32):
        return f"ids_restore has shape {list(ids.shape)} and dtype {ids.dtype}, expected [{batch}, {length}] int64"
    if not torch.equal(ids.sort(dim=1).values, torch.arange(length).expand(batch, -1).to(ids.dtype)):
        return "ids_restore is not a permutation of 0..L-1 in every row"
    if batch > 1 and bool((ids == ids[:1]).all()):
        return ("every image got the same permutation: when ids_shuffle is None, draw one random permutation per "
                "image (e.g. argsort of torch.rand(B, L))")
    return None


# ---- calls --------------------------------------------------------------------------------------

def harness(target, args, shows, **kwargs):
    return HarnessCall(target, args, kwargs, module="mae_harness", needs=("mae",), shows=shows)


def vit_call(grad=None):
    return HarnessCall("vit_forward", ("images", "W"), VIT, module="mae_harness", needs=("mae",),
                       shows="ClassificationViT(5, embedding_dim=32, patch_size=4, num_patches=4).forward", grad=grad)


def encoder_call(config=SMALL):
    return harness("forward_encoder", ("images", "ids", "W"), "MaskedAutoEncoder.forward_encoder(images, ids_shuffle)",
                   config=config)


def decoder_call(config=SMALL):
    return harness("forward_decoder", ("embeddings", "ids_restore", "W"),
                   "MaskedAutoEncoder.forward_decoder(encoder_embeddings, ids_restore)", config=config)


def representation_call(config=SMALL):
    return harness("encoder_representation", ("images", "W"), "MaskedAutoEncoder.forward_encoder_representation",
                   config=config)


def vit_inputs(batch=3, dtype=torch.float64):
    return {"images": images(batch, {"num_patches": 4, "patch_size": 4}, dtype),
            "W": ViTWeights(dtype=dtype, **VIT)}


def encoder_inputs(batch=3, config=SMALL, dtype=torch.float64):
    return {"images": images(batch, config, dtype), "ids": Permutations(batch, length(config)),
            "W": MAEWeights(frozen(config), dtype)}


def decoder_inputs(batch=3, config=SMALL, dtype=torch.float64):
    return {"embeddings": Randn(batch, 1 + keep(config), config["encoder_dim"], dtype=dtype),
            "ids_restore": Permutations(batch, length(config)), "W": MAEWeights(frozen(config), dtype)}


def classifier_inputs(batch=3, grads=False):
    found = {"images": images(batch, SMALL), "W": ClassifierWeights(frozen(SMALL), CLASSES)}
    return {**found, "dOut": Randn(batch, CLASSES)} if grads else found


def classifier_call(detach, grads=False):
    if grads:
        return harness("classify_gradients", ("images", "dOut", "W"),
                       f"ClassificationMAE(5, mae, 32, detach={detach}): one backward pass, gradients on the head "
                       "and on the MAE's patch projection", config=SMALL, n_classes=CLASSES, detach=detach)
    return harness("classify", ("images", "W"), f"ClassificationMAE(5, mae, 32, detach={detach}).forward",
                   config=SMALL, n_classes=CLASSES, detach=detach)


def call(target, *args, **kwargs):
    return Call(target, args, kwargs)


ENCODER_FEEDBACK = ("steps: patchify, project, add encoder_position_encoding (to every patch, before masking), "
                    "random_masking with self.keep_length, CLS in front without a position encoding, the encoder")
DECODER_FEEDBACK = ("steps: project to the decoder width, set CLS aside, append masked_tokens for the L - K dropped "
                    "patches, restore_masked with ids_restore, add decoder_position_encoding, CLS back in front, the "
                    "decoder, drop CLS, decoder_output_projection")

# ---- autograder.pt: what the course's notebook saved ------------------------------------------------

def _course_vit(course):
    return {"images": course["input"]["ClassificationViT.forward"], "W": course["weights"]["ClassificationViT"]}


def _course_pair(key, first, second):
    def inputs(course):
        a, b = course["input"][key]
        return {first: a, second: b, "W": course["weights"]["MaskedAutoEncoder"]}
    return inputs


def _course_representation(course):
    return {"images": course["input"]["MaskedAutoEncoder.forward_encoder_representation"],
            "W": course["weights"]["MaskedAutoEncoder"]}


def _course_restore_masked(course):
    x, ids_shuffle = course["input"]["random_masking"]
    kept, masked, ids_restore = course["input"]["restore_masked"]
    return {"x": x, "ids": ids_shuffle, "kept": kept, "masked": masked, "ids_restore": ids_restore}


def _as_course_output(output):
    """The course saves forward_encoder's and random_masking's tuples; any mask dtype."""
    return mask_any_dtype(output) if type(output) in (tuple, list) and len(output) == 3 else output


def reported(name, points, *, call, inputs_from, tolerance=COURSE, **kwargs):
    """The case "autograder.pt: KEY" for the entry KEY the notebook saved."""
    return ReportedOutput(name, points, key=name.removeprefix("autograder.pt: "), call=call, inputs_from=inputs_from,
                          tolerance=tolerance, canonical=_as_course_output,
                          handout="upload autograder.pt, which the notebook's test cells write", **kwargs)


COURSE_VIT = {"n_classes": 10, "embedding_dim": 256, "patch_size": 4, "num_patches": 8}



CASES = [
    # patches
    # given code: checked (the course's autograder checks it too), worth nothing
    Value("patchify (given)", 0, call=call("patchify", "images"), inputs={"images": Randn(2, 3, 16, 16)},
          tolerance=COURSE, feedback="patchify is given: restore the starter's version"),
    Value("unpatchify", 3, call=call("unpatchify", "patches"), inputs={"patches": Randn(2, 16, 48)},
          tolerance=COURSE, handout="implement unpatchify, the inverse of patchify",
          feedback="a patch is flattened (c, p1, p2) and patches run row by row over the grid: undo patchify's "
                   "reshape and permute in reverse order"),
    Value("unpatchify: patch size 2, 8 x 8 grid, float32", 1, call=call("unpatchify", "patches", patch_size=2),
          inputs={"patches": Randn(2, 64, 12, dtype=torch.float32)}, tolerance=COURSE,
          handout="implement unpatchify, the inverse of patchify",
          feedback="use the patch_size argument and the number of patches; keep the input's dtype"),
    Value("unpatchify, hidden sizes", 1, visibility="hidden", call=call("unpatchify", "patches", patch_size=3),
          inputs={"patches": Randn(3, 25, 27)}, tolerance=COURSE, handout="implement unpatchify"),

    # the ViT
    Value("ClassificationViT.forward", 4, call=vit_call(), inputs=vit_inputs(), tolerance=COURSE,
          handout="implement the forward method of ClassificationViT",
          feedback="patchify, patch_projection, CLS in front, add position_encoding (it covers CLS too), the "
                   "transformer, then output_head on the CLS output (index 0)"),
    Value("ClassificationViT.forward, float32", 1, call=vit_call(), inputs=vit_inputs(dtype=torch.float32),
          tolerance=COURSE, handout="implement the forward method of ClassificationViT",
          feedback="keep the input's dtype (no .double() or torch.tensor of a fixed dtype)"),
    Value("ClassificationViT: gradients w.r.t. the images", 2, call=vit_call(grad=("images",)),
          inputs={**vit_inputs(2), "dOut": Randn(2, 5)}, tolerance=COURSE,
          handout="implement the forward method of ClassificationViT (it is trained with backpropagation)"),
    Value("ClassificationViT.forward, hidden batch", 1, visibility="hidden", call=vit_call(), inputs=vit_inputs(6),
          tolerance=COURSE, handout="implement the forward method of ClassificationViT"),

    # masking
    Value("random_masking", 4, call=call("random_masking", "x", 4, "ids"),
          inputs={"x": Randn(3, 16, 5), "ids": Permutations(3, 16)}, tolerance=COURSE, **MASKED_OUTPUT,
          handout="implement random_masking: kept, mask (1 = masked), ids_restore",
          feedback="kept = the first keep_length patches in the order ids_shuffle; mask is 1 where a patch is "
                   "masked, in the original order; ids_restore = argsort(ids_shuffle)"),
    Value("random_masking: keep one, float32", 1, call=call("random_masking", "x", 1, "ids"),
          inputs={"x": Randn(2, 9, 3, dtype=torch.float32), "ids": Permutations(2, 9)}, tolerance=COURSE,
          **MASKED_OUTPUT, handout="implement random_masking"),
    Value("random_masking: keep all", 1, call=call("random_masking", "x", 8, "ids"),
          inputs={"x": Randn(2, 8, 3), "ids": Permutations(2, 8)}, tolerance=COURSE, **MASKED_OUTPUT,
          handout="implement random_masking", feedback="with keep_length = L nothing is masked: the mask is all 0"),
    Value("restore_masked", 3, call=call("restore_masked", "kept", "masked", "ids_restore"),
          inputs={"kept": Randn(3, 4, 5), "masked": Randn(3, 12, 5), "ids_restore": Permutations(3, 16)},
          tolerance=COURSE, handout="implement restore_masked",
          feedback="concatenate kept then masked along the sequence, then index with ids_restore (index_sequence)"),
    Value("restore_masked undoes random_masking", 2,
          call=harness("mask_then_restore", ("x", 6, "ids"), "restore_masked(*random_masking(x, 6, ids_shuffle)...)"),
          inputs={"x": Randn(2, 16, 4), "ids": Permutations(2, 16)}, tolerance=COURSE,
          handout="restore_masked puts the kept and masked patches back in the original order",
          feedback="random_masking's ids_restore and restore_masked must agree: the result must be x itself"),

    # the MAE
    Value("MaskedAutoEncoder.forward_encoder", 5, call=encoder_call(), inputs=encoder_inputs(), tolerance=ENCODER,
          **MASKED_OUTPUT, handout="implement MaskedAutoEncoder.forward_encoder", feedback=ENCODER_FEEDBACK),
    Value("MaskedAutoEncoder.forward_encoder, float32", 1, call=encoder_call(),
          inputs=encoder_inputs(2, dtype=torch.float32), tolerance=ENCODER, **MASKED_OUTPUT,
          handout="implement MaskedAutoEncoder.forward_encoder", feedback="keep the input's dtype"),
    OwnPermutation("MaskedAutoEncoder.forward_encoder draws its own permutation", 2,
                   call=harness("forward_encoder_own_shuffle", ("images", "W"),
                                "MaskedAutoEncoder.forward_encoder(images) with no ids_shuffle", config=SMALL),
                   with_shuffle=encoder_call(), inputs={"images": images(4, SMALL), "W": MAEWeights(frozen(SMALL))},
                   tolerance=ENCODER, **MASKED_OUTPUT, length=length(SMALL),
                   handout="if ids_shuffle is omitted, generate a random permutation of patch indices and pass it "
                           "to random_masking",
                   feedback="with ids_shuffle=None draw a fresh permutation per image and use it exactly as a given "
                            "ids_shuffle"),
    Value("MaskedAutoEncoder.forward_decoder", 5, call=decoder_call(), inputs=decoder_inputs(), tolerance=DECODER,
          handout="implement MaskedAutoEncoder.forward_decoder", feedback=DECODER_FEEDBACK),
    SequenceOrCls("MaskedAutoEncoder.forward_encoder_representation", 3, call=representation_call(),
                  inputs={"images": images(3, SMALL), "W": MAEWeights(frozen(SMALL))}, tolerance=REPRESENTATION,
                  handout="implement MaskedAutoEncoder.forward_encoder_representation (no masking)",
                  feedback="the encoder steps without random_masking: every patch, with its position encoding, "
                           "CLS in front"),
    Value("MaskedAutoEncoder, hidden sizes", 2, visibility="hidden",
          call=encoder_call({**SMALL, "num_patches": 3, "mask_ratio": 0.5}),
          inputs=encoder_inputs(2, {**SMALL, "num_patches": 3, "mask_ratio": 0.5}), tolerance=ENCODER,
          **MASKED_OUTPUT, handout="implement MaskedAutoEncoder.forward_encoder"),

    # classification on the MAE
    Value("ClassificationMAE.forward (linear probe)", 2, call=classifier_call(True), inputs=classifier_inputs(),
          tolerance=COURSE, handout="implement ClassificationMAE.forward",
          feedback="the head on the CLS row of forward_encoder_representation (no masking)"),
    Value("ClassificationMAE.forward (fine-tuning)", 1, call=classifier_call(False), inputs=classifier_inputs(),
          tolerance=COURSE, handout="implement ClassificationMAE.forward"),
    Value("ClassificationMAE: detach=True keeps gradients out of the MAE", 2, call=classifier_call(True, grads=True),
          inputs=classifier_inputs(grads=True), tolerance=COURSE,
          handout="remember to detach the representations if self.detach=True",
          feedback="with detach=True only the head learns: detach the representation (or compute it under "
                   "torch.no_grad()); with detach=False gradients must reach the MAE"),
    Value("ClassificationMAE: detach=False fine-tunes the MAE", 1, call=classifier_call(False, grads=True),
          inputs=classifier_inputs(grads=True), tolerance=COURSE,
          handout="ClassificationMAE fine-tunes the MAE when detach=False"),

    # autograder.pt: what the course's notebook saved (graded when staff configure the course inputs)
    reported("autograder.pt: patchify", 0.5, call=call("patchify", "images"),
             inputs_from=lambda c: {"images": c["input"]["patchify"]}),
    reported("autograder.pt: unpatchify", 0.5, call=call("unpatchify", "patches"),
             inputs_from=lambda c: {"patches": c["input"]["unpatchify"]}),
    reported("autograder.pt: ClassificationViT.forward", 1,
             call=HarnessCall("vit_forward", ("images", "W"), COURSE_VIT, module="mae_harness", needs=("mae",),
                              shows="ClassificationViT(10).forward"), inputs_from=_course_vit),
    reported("autograder.pt: random_masking", 1, call=call("random_masking", "x", 4, "ids"),
             inputs_from=_course_pair("random_masking", "x", "ids")),
    reported("autograder.pt: restore_masked", 0.5,
             call=harness("course_restore_masked_entry", ("x", "ids", "ids_restore"),
                          "the notebook's restore_masked test cell"), inputs_from=_course_restore_masked,
             also_accept=((call("restore_masked", "kept", "masked", "ids_restore"),
                           "you saved restore_masked's own output; the course's cell saves random_masking's "
                           "(kept, mask) with restore_masked's ids_restore, a slip in the notebook: both are accepted"),)),
    reported("autograder.pt: MaskedAutoEncoder.forward_encoder", 1, call=encoder_call(COURSE_SIZES),
             inputs_from=_course_pair("MaskedAutoEncoder.forward_encoder", "images", "ids"), tolerance=ENCODER),
    reported("autograder.pt: MaskedAutoEncoder.forward_decoder", 1, call=decoder_call(COURSE_SIZES),
             inputs_from=_course_pair("MaskedAutoEncoder.forward_decoder", "embeddings", "ids_restore"),
             tolerance=DECODER),
    reported("autograder.pt: MaskedAutoEncoder.forward_encoder_representation", 1,
             call=representation_call(COURSE_SIZES), inputs_from=_course_representation, tolerance=REPRESENTATION,
             also_accept=((harness("encoder_representation_cls", ("images", "W"),
                                   "MaskedAutoEncoder.forward_encoder_representation (the CLS row)",
                                   config=COURSE_SIZES),
                           "you saved the CLS row only; the notebook leaves open whether the representation is "
                           "the whole sequence or the CLS row: both are accepted"),)),

    ReportedScore("autograder.pt: vit_acc (self-reported)", 2, key="vit_acc",
                  what="the ViT's best test accuracy", requires=("ClassificationViT.forward",),
                  handout="train the ViT on CIFAR-10 to at least the threshold accuracy"),
    ReportedScore("autograder.pt: mae_linear_acc (self-reported)", 2, key="mae_linear_acc",
                  what="the linear probe's test accuracy on the pretrained MAE",
                  requires=("MaskedAutoEncoder.forward_encoder", "ClassificationMAE.forward (linear probe)",
                            "ClassificationMAE: detach=True keeps gradients out of the MAE"),
                  handout="train a linear classifier on the pretrained MAE to at least the threshold accuracy"),
    ReportedScore("autograder.pt: mae_finetune_acc (self-reported)", 2, key="mae_finetune_acc",
                  what="the fine-tuned MAE classifier's test accuracy",
                  requires=("MaskedAutoEncoder.forward_encoder", "ClassificationMAE.forward (fine-tuning)"),
                  handout="fine-tune the pretrained MAE to at least the threshold accuracy"),
]
