"""The course's inputs file and the notebook's saved outputs, in CS182's formats (staff side).

CS182's notebook downloads `autograder_student.pt`, `{'input': {...}, 'weights': {...}}`, runs
each implemented piece on it in its test cells and saves `{'output': {...}}` as autograder.pt.
We do not have the course's file. `course_inputs` draws one of the same form and sizes (seeded),
for the tests and for a course that hands out its own; `notebook_outputs` does what the
notebook's test cells do, slip included, with a given module (the reference, or a known
mistake: trusted staff code only, never a student's).
"""
from __future__ import annotations

import io

import torch

from .cases import COURSE_SIZES, ViTWeights, _mae_weights


def course_inputs(seed: int = 0, batch: int = 2) -> dict:
    """{'input': ..., 'weights': ...} with the notebook's keys and its model sizes, float32."""
    generator = torch.Generator().manual_seed(seed)
    L, D = 64, 256

    def randn(*shape):
        return torch.randn(*shape, generator=generator)

    def permutations():
        return torch.argsort(torch.rand(batch, L, generator=generator), dim=1)

    inputs = {
        "patchify": randn(batch, 3, 32, 32),
        "unpatchify": randn(batch, L, 48),
        "ClassificationViT.forward": randn(batch, 3, 32, 32),
        "random_masking": (randn(batch, L, 8), permutations()),
        "restore_masked": (randn(batch, 4, 8), randn(batch, L - 4, 8), permutations()),
        "MaskedAutoEncoder.forward_encoder": (randn(batch, 3, 32, 32), permutations()),
        "MaskedAutoEncoder.forward_decoder": (randn(batch, 17, D), permutations()),
        "MaskedAutoEncoder.forward_encoder_representation": randn(batch, 3, 32, 32),
    }
    weights = {
        "ClassificationViT": ViTWeights(10, 256, 4, 8, dtype=torch.float32).build(generator),
        "MaskedAutoEncoder": _mae_weights(generator, COURSE_SIZES, torch.float32),
    }
    return {"input": inputs, "weights": weights}


def notebook_outputs(module, course: dict) -> dict:
    """What the notebook's test cells put in auto_grader_data['output'], run with `module`."""
    data, out = course["input"], {}
    out["patchify"] = module.patchify(data["patchify"])
    out["unpatchify"] = module.unpatchify(data["unpatchify"])
    vit = module.ClassificationViT(10)
    vit.load_state_dict(course["weights"]["ClassificationViT"])
    out["ClassificationViT.forward"] = vit.forward(data["ClassificationViT.forward"])
    x, ids_shuffle = data["random_masking"]
    kept, mask, ids_restore = module.random_masking(x, 4, ids_shuffle)
    out["random_masking"] = (kept, mask, ids_restore)
    kept_x, masked_x, ids_restore = data["restore_masked"]
    module.restore_masked(kept_x, masked_x, ids_restore)
    out["restore_masked"] = (kept, mask, ids_restore)          # the notebook's slip, kept
    model = module.MaskedAutoEncoder(module.Transformer(embedding_dim=256, n_layers=4),
                                     module.Transformer(embedding_dim=128, n_layers=2))
    model.load_state_dict(course["weights"]["MaskedAutoEncoder"])
    out["MaskedAutoEncoder.forward_encoder"] = model.forward_encoder(*data["MaskedAutoEncoder.forward_encoder"])
    out["MaskedAutoEncoder.forward_decoder"] = model.forward_decoder(*data["MaskedAutoEncoder.forward_decoder"])
    out["MaskedAutoEncoder.forward_encoder_representation"] = model.forward_encoder_representation(
        data["MaskedAutoEncoder.forward_encoder_representation"])
    return {k: tuple(t.detach() for t in v) if isinstance(v, tuple) else v.detach() for k, v in out.items()}


def autograder_pt(output: dict) -> bytes:
    """The bytes of autograder.pt, saved as the notebook saves it."""
    buffer = io.BytesIO()
    torch.save({"output": output}, buffer)
    return buffer.getvalue()
