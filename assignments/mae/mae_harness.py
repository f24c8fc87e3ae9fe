"""How the grader calls a student's MAE notebook: build the course's classes with the grader's
weights, call one method, return plain tensors.

A support module of the sandbox: the same functions run on the student's module (in the child)
and on the reference's or a mistake's (in the parent), so both are called exactly alike. Every
function receives `modules` ({"mae": module}) first; `config` is a dict of the model's sizes:

    {"encoder_dim": Ee, "decoder_dim": Ed, "encoder_layers": .., "decoder_layers": ..,
     "encoder_ffn": .., "decoder_ffn": .., "patch_size": p, "num_patches": n, "mask_ratio": r}

The encoder and decoder are the notebook's own given `Transformer` class, as its test cells build
them: `MaskedAutoEncoder(Transformer(embedding_dim=256, n_layers=4), Transformer(embedding_dim=128,
n_layers=2))`. Weights are loaded by the notebook's parameter names, in the inputs' dtype.
"""
from __future__ import annotations

import torch

from grader.harness import HarnessError, build, load_weights, student_class

MODULE = "mae"


def _transformer(modules, width: int, layers: int, ffn: int):
    return student_class(modules, MODULE, "Transformer")(embedding_dim=width, n_layers=layers, feedforward_dim=ffn)


def _mae(modules, weights: dict, config: dict, dtype: torch.dtype):
    """The student's MaskedAutoEncoder of `config`, with the grader's weights, in eval mode."""
    cls = student_class(modules, MODULE, "MaskedAutoEncoder")
    model = cls(_transformer(modules, config["encoder_dim"], config["encoder_layers"], config["encoder_ffn"]),
                _transformer(modules, config["decoder_dim"], config["decoder_layers"], config["decoder_ffn"]),
                config["encoder_dim"], config["decoder_dim"], config["patch_size"], config["num_patches"],
                config["mask_ratio"]).to(dtype)
    load_weights(model, weights, "MaskedAutoEncoder")
    return model.eval()


def vit_forward(modules, images, weights, n_classes, embedding_dim, patch_size, num_patches):
    """ClassificationViT(n_classes, embedding_dim, patch_size, num_patches).forward(images) -> [B, n_classes]."""
    cls = student_class(modules, MODULE, "ClassificationViT")
    model = build(cls, n_classes, embedding_dim, patch_size, num_patches, weights=weights, train=False,
                  dtype=images.dtype, what="ClassificationViT")
    return model(images)


def forward_encoder(modules, images, ids_shuffle, weights, config):
    """MaskedAutoEncoder.forward_encoder(images, ids_shuffle) -> (embeddings, mask, ids_restore)."""
    return _mae(modules, weights, config, images.dtype).forward_encoder(images, ids_shuffle)


def forward_encoder_own_shuffle(modules, images, weights, config):
    """MaskedAutoEncoder.forward_encoder(images): the method draws its own permutation."""
    return _mae(modules, weights, config, images.dtype).forward_encoder(images)


def forward_decoder(modules, embeddings, ids_restore, weights, config):
    """MaskedAutoEncoder.forward_decoder(embeddings, ids_restore) -> [B, L, p*p*3]."""
    return _mae(modules, weights, config, embeddings.dtype).forward_decoder(embeddings, ids_restore)


def encoder_representation(modules, images, weights, config):
    """MaskedAutoEncoder.forward_encoder_representation(images)."""
    return _mae(modules, weights, config, images.dtype).forward_encoder_representation(images)


def encoder_representation_cls(modules, images, weights, config):
    """The CLS row of forward_encoder_representation, whichever form the method returns (the
    whole sequence [B, 1 + L, Ee] or the CLS row [B, Ee]: the notebook leaves it open)."""
    representation = encoder_representation(modules, images, weights, config)
    if isinstance(representation, torch.Tensor) and representation.dim() == 3:
        return representation[:, 0]
    return representation


def _classifier(modules, weights, config, n_classes, detach, dtype):
    mae = _mae(modules, {k[len("mae."):]: v for k, v in weights.items() if k.startswith("mae.")}, config, dtype)
    cls = student_class(modules, MODULE, "ClassificationMAE")
    model = cls(n_classes, mae, config["encoder_dim"], detach).to(dtype)
    load_weights(model, {k: v for k, v in weights.items() if not k.startswith("mae.")}, "ClassificationMAE")
    return model.eval()


def classify(modules, images, weights, config, n_classes, detach):
    """ClassificationMAE(n_classes, mae, Ee, detach).forward(images) -> [B, n_classes]."""
    return _classifier(modules, weights, config, n_classes, detach, images.dtype)(images)


def classify_gradients(modules, images, upstream, weights, config, n_classes, detach):
    """The gradients one backward pass of ClassificationMAE leaves on the head and on the MAE:
    {"head": d/d output_head's Linear weight, "mae": d/d the MAE's patch projection weight}; a
    parameter no gradient reached counts as zeros."""
    model = _classifier(modules, weights, config, n_classes, detach, images.dtype)
    logits = model(images)
    if not isinstance(logits, torch.Tensor) or logits.shape != upstream.shape:
        raise HarnessError(f"ClassificationMAE.forward returned {type(logits).__name__} "
                           f"{list(getattr(logits, 'shape', []))}, expected logits {list(upstream.shape)}")
    (logits * upstream).sum().backward()
    head = dict(model.named_parameters())["output_head.1.weight"]
    projection = model.mae.encoder_input_projection.weight

    def grad(p):
        return p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p.detach())
    return {"head": grad(head), "mae": grad(projection)}


def mask_then_restore(modules, x, keep_length, ids_shuffle):
    """random_masking, then restore_masked of the kept patches and the masked ones (taken from x
    in the shuffled order): every patch must be back where it was, so the result equals x."""
    kept, _, ids_restore = modules[MODULE].random_masking(x, keep_length, ids_shuffle)
    dropped = ids_shuffle[:, keep_length:]                                          # [B, L - K]
    masked = torch.gather(x, 1, dropped.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # [B, L - K, D]
    return modules[MODULE].restore_masked(kept, masked, ids_restore)


def course_restore_masked_entry(modules, x, ids_shuffle, ids_restore):
    """What CS182's test cell stores under "restore_masked": it saves `(kept, mask, ids_restore)`,
    where kept and mask come from random_masking(x, 4, ids_shuffle) on the random_masking inputs
    and ids_restore is restore_masked's own input (the cell rebinds the name before saving)."""
    kept, mask, _ = modules[MODULE].random_masking(x, 4, ids_shuffle)
    return kept, mask, ids_restore
