"""Vision Transformer and Masked Autoencoder (CS182 q_mae notebook), staff reference.

Dosovitskiy et al., "An Image is Worth 16x16 Words" (ViT, ICLR 2021) and He et al., "Masked
Autoencoders Are Scalable Vision Learners" (MAE, CVPR 2022), in the course's conventions:

- A patch is flattened channel first, (c, p1, p2): the notebook's given `patchify` is
  einops `b c (h p1) (w p2) -> b (h w) (c p1 p2)`. facebookresearch/mae and HF ViTMAE flatten
  (p1, p2, c) instead. Patches are numbered row-major over the grid, (h w).
- Masking is a permutation `ids_shuffle` [B, L] of the patch indices: the first `keep_length`
  patches of the shuffled order are kept. `mask` [B, L] is 1 where a patch is masked, 0 where
  kept, in the original patch order. `ids_restore = argsort(ids_shuffle)`.
- keep_length = L - int(L * mask_ratio) (facebookresearch/mae and HF: int(L * (1 - mask_ratio)),
  which can differ by one through float rounding).
- The MAE encoder has no position encoding on CLS (facebookresearch/mae and HF add the CLS row of
  a [1, L + 1, E] table); the ViT classifier's `position_encoding` [1, L + 1, E] does cover CLS.
- The MAE decoder's position encoding covers the patches only, [1, L, Ed]; CLS goes through the
  decoder without one.
- The encoder and decoder are the course's post-LN `Transformer` (facebookresearch/mae: pre-LN
  blocks and a final LayerNorm); `MaskedAutoEncoder` takes them as arguments, so any module
  mapping [B, T, E] -> [B, T, E] fits.

Shapes: B batch, C = 3 channels, p patch side, n patches per image side (`num_patches`),
L = n * n patches, F = C * p * p pixels per patch, K = keep_length, E (Ee, Ed) embedding widths.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def patchify(images, patch_size=4):
    """[B, C, n*p, m*p] -> [B, n*m, C*p*p]: patches row-major over the grid, each flattened (c, p1, p2)."""
    B, C, H, W = images.shape
    p = patch_size
    patches = images.reshape(B, C, H // p, p, W // p, p)  # b c h p1 w p2
    patches = patches.permute(0, 2, 4, 1, 3, 5)            # b h w c p1 p2
    return patches.reshape(B, (H // p) * (W // p), C * p * p)


def unpatchify(patches, patch_size=4):
    """[B, n*n, C*p*p] -> [B, C, n*p, n*p], the inverse of `patchify` for square images."""
    B, L, patch_features = patches.shape
    p = patch_size
    n = round(L ** 0.5)
    C = patch_features // (p * p)
    images = patches.reshape(B, n, n, C, p, p)    # b h w c p1 p2
    images = images.permute(0, 3, 1, 4, 2, 5)     # b c h p1 w p2
    return images.reshape(B, C, n * p, n * p)


class Transformer(nn.Module):
    """The notebook's given encoder: `nn.TransformerEncoder` of post-LN layers (LayerNorm after
    each residual), GELU MLP, batch first, no dropout. [B, T, E] -> [B, T, E]."""

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
    """ViT classifier: patches -> linear embedding, CLS in front, learned position encoding on all
    1 + L tokens, Transformer, LayerNorm + Linear head on the CLS output."""

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
        """[B, 3, n*p, n*p] -> logits [B, n_classes]."""
        x = self.patch_projection(patchify(images, self.patch_size))  # [B, L, E]
        cls = self.cls_token.expand(x.shape[0], -1, -1)                # [B, 1, E]
        x = torch.cat([cls, x], dim=1) + self.position_encoding         # [B, 1 + L, E]
        x = self.transformer(x)
        return self.output_head(x[:, 0])                                # [B, n_classes]


def index_sequence(x, ids):
    """The notebook's given gather along the sequence: x [B, L] or [B, L, D], ids [B, K] ->
    [B, K] or [B, K, D] with out[b, k] = x[b, ids[b, k]]."""
    if x.dim() == 3:
        ids = ids.unsqueeze(-1).expand(-1, -1, x.shape[-1])
    return torch.take_along_dim(x, ids, dim=1)


def random_masking(x, keep_length, ids_shuffle):
    """Keep the first `keep_length` patches of the order `ids_shuffle`, mask the rest.

    x: [B, L, D]; ids_shuffle: [B, L], each row a permutation of 0..L-1.
    Returns kept [B, K, D] (in shuffled order), mask [B, L] in x's dtype (1 = masked, 0 = kept,
    original order), ids_restore [B, L] = argsort(ids_shuffle), so that
    restore_masked(kept, x_masked_part, ids_restore) puts every patch back in place.
    """
    kept = index_sequence(x, ids_shuffle[:, :keep_length])                # [B, K, D]
    ids_restore = torch.argsort(ids_shuffle, dim=1)                       # [B, L]
    shuffled_mask = torch.ones(ids_shuffle.shape, dtype=x.dtype, device=x.device)
    shuffled_mask[:, :keep_length] = 0                                    # 0 kept, 1 masked, shuffled order
    mask = index_sequence(shuffled_mask, ids_restore)                     # [B, L], original order
    return kept, mask, ids_restore


def restore_masked(kept_x, masked_x, ids_restore):
    """Undo the shuffle: kept_x [B, K, D] and masked_x [B, L - K, D], both in shuffled order,
    -> [B, L, D] in the original patch order."""
    return index_sequence(torch.cat([kept_x, masked_x], dim=1), ids_restore)


def random_permutation(batch_size, length, device=None):
    """[B, L]: one uniformly random permutation of 0..L-1 per row, as argsort of torch.rand noise
    drawn from torch's global generator (as facebookresearch/mae and HF ViTMAE do)."""
    noise = torch.rand(batch_size, length, device=device)  # [B, L]
    return torch.argsort(noise, dim=1)


class MaskedAutoEncoder(nn.Module):
    """MAE: an encoder sees a random subset of the patches (plus CLS), a lighter decoder sees all
    positions (mask tokens where patches were dropped) and predicts every patch's pixels."""

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

    def embed_patches(self, images):
        """[B, 3, n*p, n*p] -> [B, L, Ee]: projected patches plus their position encoding."""
        patches = patchify(images, self.patch_size)                                    # [B, L, F]
        return self.encoder_input_projection(patches) + self.encoder_position_encoding

    def prepend_cls(self, x):
        """[B, T, Ee] -> [B, 1 + T, Ee]; CLS gets no position encoding."""
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)

    def forward_encoder(self, images, ids_shuffle=None):
        """images [B, 3, n*p, n*p]; ids_shuffle [B, L] or None for a fresh random permutation.
        -> (encoder_embeddings [B, 1 + K, Ee], mask [B, L] with 1 = masked, ids_restore [B, L])."""
        x = self.embed_patches(images)                                                  # [B, L, Ee]
        if ids_shuffle is None:
            ids_shuffle = random_permutation(x.shape[0], x.shape[1], device=x.device)
        kept, mask, ids_restore = random_masking(x, self.keep_length, ids_shuffle)     # [B, K, Ee]
        return self.encoder(self.prepend_cls(kept)), mask, ids_restore

    def forward_decoder(self, encoder_embeddings, ids_restore):
        """encoder_embeddings [B, 1 + K, Ee], ids_restore [B, L] -> predicted patches [B, L, F]."""
        x = self.decoder_input_projection(encoder_embeddings)               # [B, 1 + K, Ed]
        cls, kept = x[:, :1], x[:, 1:]                                       # [B, 1, Ed], [B, K, Ed]
        B, K, Ed = kept.shape
        masked = self.masked_tokens.expand(B, ids_restore.shape[1] - K, Ed)  # [B, L - K, Ed]
        x = restore_masked(kept, masked, ids_restore) + self.decoder_position_encoding  # [B, L, Ed]
        x = self.decoder(torch.cat([cls, x], dim=1))                         # [B, 1 + L, Ed]
        return self.decoder_output_projection(x[:, 1:])                      # [B, L, F]

    def forward(self, images):
        """images -> (predicted patches [B, L, F], mask [B, L]) for a fresh random masking."""
        encoder_output, mask, ids_restore = self.forward_encoder(images)
        decoder_output = self.forward_decoder(encoder_output, ids_restore)
        return decoder_output, mask

    def forward_encoder_representation(self, images):
        """The encoder on all L patches, no masking: [B, 3, n*p, n*p] -> [B, 1 + L, Ee], CLS first.

        The notebook asks for steps 1, 2, 3, 5, 6 of `forward_encoder` without saying whether the
        whole sequence or only CLS comes back; this returns the whole sequence, and
        `ClassificationMAE` takes its CLS row."""
        return self.encoder(self.prepend_cls(self.embed_patches(images)))


class ClassificationMAE(nn.Module):
    """LayerNorm + Linear head on the CLS output of a pretrained MAE encoder (unmasked).
    detach=True: linear probe, no gradient reaches the MAE; detach=False: fine-tuning."""

    def __init__(self, n_classes, mae, embedding_dim=256, detach=False):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.mae = mae
        self.output_head = nn.Sequential(nn.LayerNorm(embedding_dim), nn.Linear(embedding_dim, n_classes))
        self.detach = detach

    def forward(self, images):
        """[B, 3, n*p, n*p] -> logits [B, n_classes]."""
        representation = self.mae.forward_encoder_representation(images)[:, 0]  # [B, Ee], CLS
        if self.detach:
            representation = representation.detach()
        return self.output_head(representation)


def reconstruction_loss(image_patches, predicted_patches, mask, normalize_targets=False):
    """MAE pixel loss: mean squared error per patch, averaged over the masked patches only.

    image_patches, predicted_patches: [B, L, F]; mask: [B, L], 1 = masked. The notebook's training
    loop computes exactly this with normalize_targets=False. normalize_targets=True is the MAE
    paper's per-patch normalised target (facebookresearch/mae `norm_pix_loss`): each target patch
    minus its own mean, divided by sqrt(its unbiased variance + 1e-6).
    """
    target = image_patches
    if normalize_targets:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)                   # unbiased, as facebookresearch/mae
        target = (target - mean) / (var + 1e-6) ** 0.5
    per_patch = (predicted_patches - target).pow(2).mean(dim=-1)  # [B, L]
    return (per_patch * mask).sum() / mask.sum()
