"""CS182 Vision Transformer and Masked Autoencoder notebook (q_mae): staff reference."""
from reference.mae.models import (
    ClassificationMAE,
    ClassificationViT,
    MaskedAutoEncoder,
    Transformer,
    index_sequence,
    patchify,
    random_masking,
    random_permutation,
    reconstruction_loss,
    restore_masked,
    unpatchify,
)

__all__ = [
    "ClassificationMAE", "ClassificationViT", "MaskedAutoEncoder", "Transformer", "index_sequence",
    "patchify", "random_masking", "random_permutation", "reconstruction_loss", "restore_masked",
    "unpatchify",
]
