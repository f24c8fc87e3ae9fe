"""Vision Transformer and Masked Autoencoder (CS182, spec C of the course APIs).

Fill in every function and method marked TODO. The rest is given: keep it as it is, since the
grader builds your classes with its own weights by these parameter names.

Conventions the grader checks:
- An image [B, C, H, W] is cut into p x p patches, numbered row by row over the grid; each patch
  is flattened channel first, (c, p1, p2): exactly what the given `patchify` does.
- Masking keeps the first `keep_length` patches of the order `ids_shuffle` (one permutation of
  0..L-1 per row). `mask` is 1 where a patch is masked, 0 where it is kept, in the original
  patch order; `ids_restore` undoes the shuffle.
- The MAE's CLS token gets no position encoding; the ViT's `position_encoding` covers CLS too.
- `forward_encoder_representation` may return the whole sequence [B, 1 + L, E] (CLS first) or
  only the CLS row [B, E]; `ClassificationMAE.forward` must agree with your choice.

You can submit this file (as mae.py), or a notebook (.ipynb) holding these definitions: the
grader keeps a notebook's imports and definitions and never runs its other cells. Upload
autograder.pt with it when your course's notebook writes one.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def patchify(images, patch_size=4):
    """Given. [B, C, H, W] -> [B, (H/p)(W/p), C*p*p]."""
    B, C, H, W = images.shape
    p = patch_size
    patches = images.reshape(B, C, H // p, p, W // p, p)  # b c h p1 w p2
    patches = patches.permute(0, 2, 4, 1, 3, 5)            # b h w c p1 p2
    return patches.reshape(B, (H // p) * (W // p), C * p * p)


def unpatchify(patches, patch_size=4):
    """[B, n*n, C*p*p] -> [B, C, n*p, n*p]: the inverse of `patchify`, for square images."""
    # TODO
    raise NotImplementedError("unpatchify")


class Transformer(nn.Module):
    """Given. A stack of post-LN Transformer encoder layers (GELU, no dropout): [B, T, E] -> [B, T, E]."""

    def __init__(self, embedding_dim=256, n_heads=4, n_layers=4, feedforward_dim=1024):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.feedforward_dim = feedforward_dim
        self.transformer = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(
                d_model=embedding_dim,
                nhead=n_heads,
                dim_feedforward=feedforward_dim,
                activation=F.gelu,
                batch_first=True,
                dropout=0.0,
            ),
            num_layers=n_layers,
        )

    def forward(self, x):
        return self.transformer(x)


class ClassificationViT(nn.Module):
    """A ViT classifier: patch embeddings, a CLS token, learned position encodings, a Transformer,
    and a LayerNorm + Linear head on the CLS output."""

    def __init__(self, n_classes, embedding_dim=256, patch_size=4, num_patches=8):
        super().__init__()
        self.patch_size = patch_size
        self.num_patches = num_patches
        self.embedding_dim = embedding_dim

        self.transformer = Transformer(embedding_dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, embedding_dim) * 0.02)
        self.position_encoding = nn.Parameter(
            torch.randn(1, num_patches * num_patches + 1, embedding_dim) * 0.02
        )
        self.patch_projection = nn.Linear(patch_size * patch_size * 3, embedding_dim)
        self.output_head = nn.Sequential(nn.LayerNorm(embedding_dim), nn.Linear(embedding_dim, n_classes))

    def forward(self, images):
        """[B, 3, H, W] -> logits [B, n_classes]: patchify, project, put CLS in front, add the
        position encoding, run the Transformer, apply the head to the CLS output."""
        # TODO
        raise NotImplementedError("ClassificationViT.forward")


def index_sequence(x, ids):
    """Given. x [B, L] or [B, L, D], ids [B, K] -> x[b, ids[b, k]] for every b, k."""
    if x.dim() == 3:
        ids = ids.unsqueeze(-1).expand(-1, -1, x.shape[-1])
    return torch.take_along_dim(x, ids, dim=1)


def random_masking(x, keep_length, ids_shuffle):
    """x [B, L, D]; ids_shuffle [B, L]. Returns (kept [B, keep_length, D], the first keep_length
    patches in the order ids_shuffle; mask [B, L], 1 = masked, in x's order; ids_restore [B, L],
    such that concatenating kept and the masked patches and indexing with it gives x back)."""
    # TODO
    raise NotImplementedError("random_masking")


def restore_masked(kept_x, masked_x, ids_restore):
    """kept_x [B, K, D] and masked_x [B, L - K, D], both in shuffled order -> [B, L, D] in the
    original order."""
    # TODO
    raise NotImplementedError("restore_masked")


class MaskedAutoEncoder(nn.Module):
    """A masked autoencoder: the encoder sees the kept patches (and CLS), the decoder sees every
    position (a learned mask token where a patch was dropped) and predicts each patch's pixels."""

    def __init__(self, encoder, decoder, encoder_embedding_dim=256,
                 decoder_embedding_dim=128, patch_size=4, num_patches=8,
                 mask_ratio=0.75):
        super().__init__()
        self.encoder_embedding_dim = encoder_embedding_dim
        self.decoder_embedding_dim = decoder_embedding_dim
        self.patch_size = patch_size
        self.num_patches = num_patches
        self.mask_ratio = mask_ratio

        self.masked_length = int(num_patches * num_patches * mask_ratio)
        self.keep_length = num_patches * num_patches - self.masked_length

        self.encoder = encoder
        self.decoder = decoder

        L = num_patches * num_patches
        self.encoder_input_projection = nn.Linear(patch_size * patch_size * 3, encoder_embedding_dim)
        self.decoder_input_projection = nn.Linear(encoder_embedding_dim, decoder_embedding_dim)
        self.decoder_output_projection = nn.Linear(decoder_embedding_dim, patch_size * patch_size * 3)
        self.cls_token = nn.Parameter(torch.randn(1, 1, encoder_embedding_dim) * 0.02)
        self.encoder_position_encoding = nn.Parameter(torch.randn(1, L, encoder_embedding_dim) * 0.02)
        self.decoder_position_encoding = nn.Parameter(torch.randn(1, L, decoder_embedding_dim) * 0.02)
        self.masked_tokens = nn.Parameter(torch.randn(1, 1, decoder_embedding_dim) * 0.02)

    def forward_encoder(self, images, ids_shuffle=None):
        """images [B, 3, H, W] -> (embeddings [B, 1 + keep_length, Ee], mask [B, L], ids_restore [B, L]):
        patchify, project, add the position encoding, mask (draw a random permutation per image
        when ids_shuffle is None), put CLS in front (no position encoding), run the encoder."""
        # TODO
        raise NotImplementedError("MaskedAutoEncoder.forward_encoder")

    def forward_decoder(self, encoder_embeddings, ids_restore):
        """encoder_embeddings [B, 1 + K, Ee], ids_restore [B, L] -> predicted patches [B, L, p*p*3]:
        project to Ed, set CLS aside, fill the masked positions with the mask token and restore
        the order, add the decoder's position encoding, put CLS back in front, run the decoder,
        drop CLS, project to pixels."""
        # TODO
        raise NotImplementedError("MaskedAutoEncoder.forward_decoder")

    def forward(self, images):
        encoder_output, mask, ids_restore = self.forward_encoder(images)
        decoder_output = self.forward_decoder(encoder_output, ids_restore)
        return decoder_output, mask

    def forward_encoder_representation(self, images):
        """The encoder on every patch, no masking (steps of forward_encoder without the masking)."""
        # TODO
        raise NotImplementedError("MaskedAutoEncoder.forward_encoder_representation")


class ClassificationMAE(nn.Module):
    """A LayerNorm + Linear head on the CLS representation of a pretrained MAE. detach=True (a
    linear probe): no gradient reaches the MAE; detach=False: the MAE is fine-tuned too."""

    def __init__(self, n_classes, mae, embedding_dim=256, detach=False):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.mae = mae
        self.output_head = nn.Sequential(nn.LayerNorm(embedding_dim), nn.Linear(embedding_dim, n_classes))
        self.detach = detach

    def forward(self, images):
        """[B, 3, H, W] -> logits [B, n_classes], from the unmasked encoder's CLS output."""
        # TODO
        raise NotImplementedError("ClassificationMAE.forward")
