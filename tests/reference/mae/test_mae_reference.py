"""Independent checks of the ViT / MAE reference (reference/mae/models.py).

Oracles, none of which share code with the reference:
  * einops.rearrange with the notebook's own patchify pattern `b c (h p1) (w p2) -> b (h w) (c p1 p2)`;
  * HF transformers' ViTMAE (5.x, built from a tiny ViTMAEConfig, randomly initialised, no
    download): `ViTMAEEmbeddings.random_masking(sequence, noise)` for the masking, and the whole
    `ViTMAEForPreTraining` for forward_encoder, forward_decoder and the loss;
  * torch's own `nn.TransformerEncoder` built as the notebook builds it, and a post-LN layer
    written out by hand.

How HF ViTMAE differs from the course, and what the end-to-end test does about it:
  * HF flattens a patch (p1, p2, c), the course (c, p1, p2): the decoder's output rows are
    permuted (`_hf_from_course_patch_order`); the conv patch embedding's weight [E, c, p, p]
    reshapes to the course's Linear weight [E, c*p*p] as is.
  * HF adds a position embedding to CLS in the encoder and in the decoder; the course adds none:
    that row is set to zero.
  * HF's blocks are pre-LN with a final LayerNorm, the course's `Transformer` is post-LN. The MAE
    takes its encoder and decoder as arguments, so the course MAE is given HF's own layer stacks
    (`_HFStack`): the test then checks the MAE plumbing (projections, masking, CLS, mask tokens,
    restore, position encodings, loss), not the transformer blocks, which test (d) covers.
  * HF: keep = int(L * (1 - mask_ratio)); course: L - int(L * mask_ratio). Equal for the sizes
    used here; `test_keep_length_rounding_differs_from_hf` shows a size where they are not.

Everything runs in float64 on tiny sizes.
"""
import einops
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import ViTMAEConfig
from transformers.models.vit_mae.modeling_vit_mae import ViTMAEEmbeddings, ViTMAEForPreTraining

from reference.mae import (
    ClassificationMAE,
    ClassificationViT,
    MaskedAutoEncoder,
    Transformer,
    index_sequence,
    patchify,
    random_masking,
    reconstruction_loss,
    restore_masked,
    unpatchify,
)

DTYPE = torch.float64
PATCH, GRID, CHANNELS = 2, 4, 3                # 8x8 images, L = 16 patches of 3*2*2 = 12 pixels
L = GRID * GRID
ENC, DEC = 8, 8


def _images(batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, CHANNELS, GRID * PATCH, GRID * PATCH, generator=g, dtype=DTYPE)


def _small_transformer(width, n_layers=1):
    return Transformer(embedding_dim=width, n_heads=2, n_layers=n_layers, feedforward_dim=16)


def _small_mae(mask_ratio=0.75, seed=0):
    torch.manual_seed(seed)
    mae = MaskedAutoEncoder(_small_transformer(ENC), _small_transformer(DEC), encoder_embedding_dim=ENC,
                            decoder_embedding_dim=DEC, patch_size=PATCH, num_patches=GRID, mask_ratio=mask_ratio)
    return mae.to(DTYPE).eval()


# (a) patchify / unpatchify ---------------------------------------------------------------------

@pytest.mark.parametrize("shape, p", [((2, 3, 8, 8), 2), ((2, 3, 8, 8), 4), ((1, 3, 32, 32), 4), ((2, 1, 6, 6), 3)])
def test_patchify_matches_course_einops_layout(shape, p):
    images = torch.randn(*shape, dtype=DTYPE)
    expected = einops.rearrange(images, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=p, p2=p)
    assert torch.equal(patchify(images, p), expected)


def test_patchify_non_square_images_matches_einops():
    images = torch.randn(2, 3, 4, 12, dtype=DTYPE)
    expected = einops.rearrange(images, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=2, p2=2)
    assert torch.equal(patchify(images, 2), expected)


@pytest.mark.parametrize("shape, p", [((2, 3, 8, 8), 2), ((1, 3, 32, 32), 4), ((2, 1, 6, 6), 3)])
def test_unpatchify_inverts_patchify_and_matches_einops(shape, p):
    images = torch.randn(*shape, dtype=DTYPE)
    patches = patchify(images, p)
    assert torch.equal(unpatchify(patches, p), images)
    n = shape[-1] // p
    expected = einops.rearrange(patches, "b (h w) (c p1 p2) -> b c (h p1) (w p2)", h=n, w=n, p1=p, p2=p)
    assert torch.equal(unpatchify(patches, p), expected)
    random_patches = torch.randn_like(patches)
    assert torch.equal(patchify(unpatchify(random_patches, p), p), random_patches)


def test_default_patch_size_is_four():
    images = torch.randn(1, 3, 32, 32, dtype=DTYPE)
    assert patchify(images).shape == (1, 64, 48)
    assert torch.equal(unpatchify(patchify(images)), images)


def test_patch_order_is_channel_first_not_hf():
    """Pixel (c, i, j) of a patch sits at c*p*p + i*p + j (course); HF puts it at (i*p + j)*C + c."""
    images = torch.arange(3 * 4 * 4, dtype=DTYPE).reshape(1, 3, 4, 4)
    first = patchify(images, 2)[0, 0]
    assert first.tolist() == [0, 1, 4, 5, 16, 17, 20, 21, 32, 33, 36, 37]
    hf = ViTMAEForPreTraining(_hf_config(image_size=4)).patchify(images)[0, 0]
    assert hf.tolist() == [0, 16, 32, 1, 17, 33, 4, 20, 36, 5, 21, 37]


# (b) random_masking and restore_masked against HF ------------------------------------------------

def _hf_config(**overrides):
    config = dict(hidden_size=ENC, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                  image_size=GRID * PATCH, patch_size=PATCH, num_channels=CHANNELS,
                  decoder_hidden_size=DEC, decoder_num_hidden_layers=1, decoder_num_attention_heads=2,
                  decoder_intermediate_size=16, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                  mask_ratio=0.75)
    config.update(overrides)
    return ViTMAEConfig(**config)


@pytest.mark.parametrize("mask_ratio, length", [(0.75, 16), (0.5, 16), (0.6, 10), (0.0, 9)])
def test_random_masking_matches_hf(mask_ratio, length):
    torch.manual_seed(1)
    x = torch.randn(4, length, 5, dtype=DTYPE)
    noise = torch.rand(4, length)
    keep_length = length - int(length * mask_ratio)
    assert keep_length == int(length * (1 - mask_ratio))  # the two conventions agree on these sizes

    hf = ViTMAEEmbeddings(_hf_config(mask_ratio=mask_ratio))
    kept_hf, mask_hf, ids_restore_hf = hf.random_masking(x, noise=noise)
    kept, mask, ids_restore = random_masking(x, keep_length, torch.argsort(noise, dim=1))

    assert torch.equal(kept, kept_hf)
    assert torch.equal(ids_restore, ids_restore_hf)
    assert mask.dtype == x.dtype
    assert torch.equal(mask, mask_hf.to(DTYPE))


def test_mask_is_one_exactly_on_masked_patches():
    ids_shuffle = torch.tensor([[2, 0, 3, 1], [1, 2, 3, 0]])
    x = torch.arange(8, dtype=DTYPE).reshape(2, 4, 1)
    kept, mask, ids_restore = random_masking(x, 1, ids_shuffle)
    assert kept[..., 0].tolist() == [[2.0], [5.0]]
    assert mask.tolist() == [[1, 1, 0, 1], [1, 0, 1, 1]]
    assert ids_restore.tolist() == [[1, 3, 0, 2], [3, 0, 1, 2]]


def test_restore_masked_undoes_the_shuffle():
    torch.manual_seed(2)
    x = torch.randn(3, L, 6, dtype=DTYPE)
    ids_shuffle = torch.argsort(torch.rand(3, L), dim=1)
    kept, mask, ids_restore = random_masking(x, 5, ids_shuffle)
    masked_part = index_sequence(x, ids_shuffle[:, 5:])
    assert torch.equal(restore_masked(kept, masked_part, ids_restore), x)
    # the restored masked part lands where mask == 1
    restored = restore_masked(torch.zeros_like(kept), torch.ones_like(masked_part), ids_restore)
    assert torch.equal(restored[..., 0], mask)


def test_forward_encoder_draws_argsort_of_torch_rand_from_the_global_generator():
    mae, images = _small_mae(), _images()
    torch.manual_seed(7)
    drawn = mae.forward_encoder(images)
    torch.manual_seed(7)
    ids_shuffle = torch.argsort(torch.rand(images.shape[0], L), dim=1)
    given = mae.forward_encoder(images, ids_shuffle)
    for a, b in zip(drawn, given):
        assert torch.equal(a, b)


def test_keep_length_rounding_differs_from_hf():
    mae = MaskedAutoEncoder(nn.Identity(), nn.Identity(), num_patches=10, mask_ratio=0.29)
    assert (mae.masked_length, mae.keep_length) == (28, 72)  # int(100 * 0.29) = int(28.999...) = 28
    assert int(100 * (1 - 0.29)) == 71                        # HF / facebookresearch keep length


# (c) end to end against HF ViTMAEForPreTraining ------------------------------------------------

class _HFStack(nn.Module):
    """HF's transformer layers followed by their final LayerNorm: [B, T, E] -> [B, T, E]."""

    def __init__(self, layers, norm):
        super().__init__()
        self.layers, self.norm = layers, norm

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


def _hf_from_course_patch_order():
    """perm with course_vector = hf_vector[perm] for one flattened patch."""
    c, i, j = torch.meshgrid(torch.arange(CHANNELS), torch.arange(PATCH), torch.arange(PATCH), indexing="ij")
    return ((i * PATCH + j) * CHANNELS + c).reshape(-1)


def _hf_and_course(norm_pix_loss):
    torch.manual_seed(3)
    hf = ViTMAEForPreTraining(_hf_config(norm_pix_loss=norm_pix_loss)).to(DTYPE).eval()
    with torch.no_grad():  # random (not sin-cos) position encodings, none on CLS as in the course
        for table in (hf.vit.embeddings.position_embeddings, hf.decoder.decoder_pos_embed):
            table.normal_()
            table[:, 0] = 0
        hf.decoder.mask_token.normal_()
        hf.vit.embeddings.cls_token.normal_()

    course = MaskedAutoEncoder(_HFStack(hf.vit.layers, hf.vit.layernorm),
                               _HFStack(hf.decoder.decoder_layers, hf.decoder.decoder_norm),
                               encoder_embedding_dim=ENC, decoder_embedding_dim=DEC, patch_size=PATCH,
                               num_patches=GRID, mask_ratio=0.75).to(DTYPE).eval()
    perm = _hf_from_course_patch_order()
    conv = hf.vit.embeddings.patch_embeddings.projection
    with torch.no_grad():
        course.encoder_input_projection.weight.copy_(conv.weight.reshape(ENC, -1))
        course.encoder_input_projection.bias.copy_(conv.bias)
        course.cls_token.copy_(hf.vit.embeddings.cls_token)
        course.encoder_position_encoding.copy_(hf.vit.embeddings.position_embeddings[:, 1:])
        course.decoder_input_projection.load_state_dict(hf.decoder.decoder_embed.state_dict())
        course.masked_tokens.copy_(hf.decoder.mask_token)
        course.decoder_position_encoding.copy_(hf.decoder.decoder_pos_embed[:, 1:])
        course.decoder_output_projection.weight.copy_(hf.decoder.decoder_pred.weight[perm])
        course.decoder_output_projection.bias.copy_(hf.decoder.decoder_pred.bias[perm])
    return hf, course, perm


@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_mae_end_to_end_matches_hf_vit_mae(norm_pix_loss):
    hf, course, perm = _hf_and_course(norm_pix_loss)
    images = _images(batch=3, seed=4)
    noise = torch.rand(3, L, generator=torch.Generator().manual_seed(5))

    with torch.no_grad():
        hf_encoded = hf.vit(images, noise=noise)
        hf_out = hf(images, noise=noise)
        embeddings, mask, ids_restore = course.forward_encoder(images, torch.argsort(noise, dim=1))
        predicted = course.forward_decoder(embeddings, ids_restore)
        loss = reconstruction_loss(patchify(images, PATCH), predicted, mask, normalize_targets=norm_pix_loss)

    assert embeddings.shape == (3, 1 + course.keep_length, ENC)
    torch.testing.assert_close(embeddings, hf_encoded.last_hidden_state, rtol=1e-12, atol=1e-12)
    assert torch.equal(mask, hf_out.mask.to(DTYPE))
    assert torch.equal(ids_restore, hf_out.ids_restore)
    assert predicted.shape == (3, L, CHANNELS * PATCH * PATCH)
    torch.testing.assert_close(predicted, hf_out.logits[..., perm], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(loss, hf_out.loss, rtol=1e-12, atol=1e-12)


def test_loss_is_the_notebook_training_loss_and_normalises_per_patch():
    torch.manual_seed(6)
    patches, predicted = torch.randn(2, L, 12, dtype=DTYPE), torch.randn(2, L, 12, dtype=DTYPE)
    mask = (torch.rand(2, L) < 0.75).to(DTYPE)
    notebook = torch.sum(torch.mean(torch.square(patches - predicted), dim=-1) * mask) / mask.sum()
    torch.testing.assert_close(reconstruction_loss(patches, predicted, mask), notebook, rtol=1e-14, atol=0)
    # normalised targets: a patch's own affine change of brightness/contrast does not matter
    scaled = patches * 3.0 + 2.0
    torch.testing.assert_close(reconstruction_loss(scaled, predicted, mask, normalize_targets=True),
                               reconstruction_loss(patches, predicted, mask, normalize_targets=True),
                               rtol=1e-6, atol=1e-9)


# (d) the given Transformer ------------------------------------------------------------------------

def _notebook_encoder(width, heads, layers, ffn):
    return nn.TransformerEncoder(
        nn.TransformerEncoderLayer(d_model=width, nhead=heads, dim_feedforward=ffn, activation=F.gelu,
                                   batch_first=True, dropout=0.0),
        num_layers=layers)


def _post_ln_layer_by_hand(layer, x):
    """LayerNorm(x + SelfAttention(x)), then LayerNorm(x + W2 gelu(W1 x)), written out."""
    B, T, E = x.shape
    heads = layer.self_attn.num_heads
    q, k, v = F.linear(x, layer.self_attn.in_proj_weight, layer.self_attn.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.reshape(B, T, heads, E // heads).transpose(1, 2) for t in (q, k, v))  # [B, h, T, d]
    weights = torch.softmax(q @ k.transpose(-2, -1) / (E // heads) ** 0.5, dim=-1)
    attended = (weights @ v).transpose(1, 2).reshape(B, T, E)
    x = layer.norm1(x + layer.self_attn.out_proj(attended))
    return layer.norm2(x + layer.linear2(F.gelu(layer.linear1(x))))


def test_transformer_defaults_are_the_notebooks():
    t = Transformer()
    assert (t.embedding_dim, t.n_heads, t.n_layers, t.feedforward_dim) == (256, 4, 4, 1024)
    assert len(t.transformer.layers) == 4
    layer = t.transformer.layers[0]
    assert layer.self_attn.num_heads == 4 and layer.linear1.out_features == 1024
    assert layer.self_attn.batch_first and not layer.norm_first and layer.activation is F.gelu
    assert layer.dropout.p == layer.dropout1.p == layer.dropout2.p == 0.0


@pytest.mark.parametrize("train", [False, True])
def test_transformer_equals_notebook_encoder_and_post_ln_by_hand(train):
    torch.manual_seed(8)
    ours = _small_transformer(8, n_layers=2).to(DTYPE).train(train)
    theirs = _notebook_encoder(8, 2, 2, 16).to(DTYPE).train(train)
    theirs.load_state_dict(ours.transformer.state_dict())
    x = torch.randn(3, 5, 8, dtype=DTYPE)
    expected = x
    for layer in theirs.layers:
        expected = _post_ln_layer_by_hand(layer, expected)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ours(x), expected, rtol=1e-12, atol=1e-12)


# forward passes that have no outside oracle: consistency checks ---------------------------------

def test_classification_vit_shapes_and_cls_readout():
    torch.manual_seed(9)
    vit = ClassificationViT(5, embedding_dim=8, patch_size=PATCH, num_patches=GRID).to(DTYPE).eval()
    assert vit.position_encoding.shape == (1, L + 1, 8)
    assert vit.patch_projection.in_features == 3 * PATCH * PATCH
    images = _images()
    with torch.no_grad():
        tokens = torch.cat([vit.cls_token.expand(3, -1, -1), vit.patch_projection(patchify(images, PATCH))], 1)
        expected = vit.output_head(vit.transformer(tokens + vit.position_encoding)[:, 0])  # CLS row, encoded too
        torch.testing.assert_close(vit(images), expected, rtol=1e-12, atol=1e-12)
    assert vit(images).shape == (3, 5)


def test_representation_is_the_encoder_with_nothing_masked():
    mae = _small_mae(mask_ratio=0.0)
    assert mae.keep_length == L
    images = _images()
    identity = torch.arange(L).expand(images.shape[0], L)
    with torch.no_grad():
        representation = mae.forward_encoder_representation(images)
        embeddings, mask, _ = mae.forward_encoder(images, identity)
    assert representation.shape == (3, 1 + L, ENC)
    torch.testing.assert_close(representation, embeddings, rtol=1e-12, atol=1e-12)
    assert not mask.any()


def test_classification_mae_reads_the_cls_representation():
    torch.manual_seed(10)
    model = ClassificationMAE(4, _small_mae(), embedding_dim=ENC).to(DTYPE).eval()
    images = _images()
    with torch.no_grad():
        expected = model.output_head(model.mae.forward_encoder_representation(images)[:, 0])
        torch.testing.assert_close(model(images), expected, rtol=0, atol=0)


# (e) gradients -------------------------------------------------------------------------------------

def _grads(module):
    return {name: p.grad for name, p in module.named_parameters()}


def _nonzero(grad):
    return grad is not None and grad.abs().sum() > 0


def test_vit_gradients_reach_every_parameter():
    torch.manual_seed(11)
    vit = ClassificationViT(5, embedding_dim=8, patch_size=PATCH, num_patches=GRID).to(DTYPE)
    F.cross_entropy(vit(_images()), torch.tensor([0, 3, 4])).backward()
    missing = [name for name, g in _grads(vit).items() if not _nonzero(g)]
    assert missing == []


def test_mae_reconstruction_gradients_reach_every_parameter():
    mae = _small_mae().train()
    images = _images()
    torch.manual_seed(12)
    predicted, mask = mae(images)
    reconstruction_loss(patchify(images, PATCH), predicted, mask, normalize_targets=True).backward()
    missing = [name for name, g in _grads(mae).items() if not _nonzero(g)]
    assert missing == []


@pytest.mark.parametrize("detach", [False, True])
def test_classification_mae_gradients_follow_detach(detach):
    torch.manual_seed(13)
    model = ClassificationMAE(4, _small_mae(), embedding_dim=ENC, detach=detach).to(DTYPE).train()
    F.cross_entropy(model(_images()), torch.tensor([0, 1, 3])).backward()
    grads = _grads(model)
    head = {n: g for n, g in grads.items() if n.startswith("output_head.")}
    assert head and all(_nonzero(g) for g in head.values())
    decoder_side = ("mae.decoder.", "mae.decoder_input_projection.", "mae.decoder_output_projection.",
                    "mae.decoder_position_encoding", "mae.masked_tokens")
    encoder_side = {n: g for n, g in grads.items() if n.startswith("mae.") and not n.startswith(decoder_side)}
    assert encoder_side
    assert all(grads[n] is None for n in grads if n.startswith(decoder_side))  # unused without masking
    if detach:
        assert all(g is None for g in encoder_side.values())
    else:
        assert [n for n, g in encoder_side.items() if not _nonzero(g)] == []
