"""Known mistakes in the ViT / MAE homework, as patches of the reference (`reference/mae/models.py`,
the student's `mae.py`), and right answers written differently, which must keep full marks."""
from grader.mutants import Mutant

FILE = "mae.py"

UNPATCHIFY_PERMUTE = "    images = images.permute(0, 3, 1, 4, 2, 5)     # b c h p1 w p2\n"
VIT_TOKENS = "        x = torch.cat([cls, x], dim=1) + self.position_encoding         # [B, 1 + L, E]\n"
VIT_HEAD = "        return self.output_head(x[:, 0])                                # [B, n_classes]\n"
MASK_ORDER = "    mask = index_sequence(shuffled_mask, ids_restore)                     # [B, L], original order\n"
RESTORE = "    return index_sequence(torch.cat([kept_x, masked_x], dim=1), ids_restore)\n"
EMBED = "        return self.encoder_input_projection(patches) + self.encoder_position_encoding\n"
DECODER_RESTORE = ("        x = restore_masked(kept, masked, ids_restore) + self.decoder_position_encoding  "
                   "# [B, L, Ed]\n")
DECODER_OUT = "        return self.decoder_output_projection(x[:, 1:])                      # [B, L, F]\n"
BETWEEN = """

class ClassificationMAE(nn.Module):
    \"\"\"LayerNorm + Linear head on the CLS output of a pretrained MAE encoder (unmasked).
    detach=True: linear probe, no gradient reaches the MAE; detach=False: fine-tuning.\"\"\"

    def __init__(self, n_classes, mae, embedding_dim=256, detach=False):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.mae = mae
        self.output_head = nn.Sequential(nn.LayerNorm(embedding_dim), nn.Linear(embedding_dim, n_classes))
        self.detach = detach

    def forward(self, images):
        \"\"\"[B, 3, n*p, n*p] -> logits [B, n_classes].\"\"\"
"""
PROBE = "        if self.detach:\n            representation = representation.detach()\n"

MUTANTS = [
    Mutant("unpatchify_rows_columns_swapped", "unpatchify puts each patch's rows where its columns go: the pixels "
           "of a patch are flattened (c, p1, p2), rows (p1) before columns (p2)", FILE,
           UNPATCHIFY_PERMUTE, "    images = images.permute(0, 3, 1, 5, 2, 4)     # b c h p1 w p2\n"),
    Mutant("unpatchify_channels_last", "unpatchify reads a patch as (p1, p2, c), channels last; patchify "
           "flattens it channel first, (c, p1, p2)", FILE,
           "    images = patches.reshape(B, n, n, C, p, p)    # b h w c p1 p2\n"
           + UNPATCHIFY_PERMUTE,
           "    images = patches.reshape(B, n, n, p, p, C)    # b h w p1 p2 c\n"
           "    images = images.permute(0, 5, 1, 3, 2, 4)     # b c h p1 w p2\n"),
    Mutant("vit_no_position_encoding_on_cls", "the ViT's position encoding is added to the patches only: its "
           "position_encoding has 1 + L rows and covers the CLS token too (add it after prepending CLS)", FILE,
           VIT_TOKENS, "        x = torch.cat([cls, x + self.position_encoding[:, 1:]], dim=1)\n"),
    Mutant("vit_mean_pooling", "the head is applied to the mean of all tokens; the ViT classifies from the CLS "
           "token's output alone (index 0)", FILE, VIT_HEAD, "        return self.output_head(x.mean(dim=1))\n"),
    Mutant("vit_last_token", "the head is applied to the last token; CLS is the first one (index 0)", FILE,
           VIT_HEAD, "        return self.output_head(x[:, -1])\n"),
    Mutant("mask_inverted", "the mask is 1 where a patch is kept; the course's convention is 1 = masked, "
           "0 = kept", FILE,
           "    shuffled_mask[:, :keep_length] = 0                                    # 0 kept, 1 masked, shuffled order\n",
           "    shuffled_mask[:, :keep_length] = 0\n    shuffled_mask = 1 - shuffled_mask\n"),
    Mutant("mask_in_shuffled_order", "the mask is in the shuffled order; it must follow the original patch "
           "order (index it with ids_restore)", FILE, MASK_ORDER, "    mask = shuffled_mask\n"),
    Mutant("ids_restore_is_ids_shuffle", "ids_restore is ids_shuffle itself; it must undo the shuffle: "
           "argsort(ids_shuffle)", FILE,
           "    ids_restore = torch.argsort(ids_shuffle, dim=1)                       # [B, L]\n",
           "    ids_restore = ids_shuffle\n"),
    Mutant("kept_from_the_end", "the last keep_length patches of the shuffled order are kept; the course keeps "
           "the first keep_length", FILE,
           "    kept = index_sequence(x, ids_shuffle[:, :keep_length])                # [B, K, D]\n",
           "    kept = index_sequence(x, ids_shuffle[:, -keep_length:])\n"),
    Mutant("restore_masked_wrong_order", "restore_masked concatenates the masked patches before the kept ones: "
           "the shuffled order has the kept patches first", FILE,
           RESTORE, "    return index_sequence(torch.cat([masked_x, kept_x], dim=1), ids_restore)\n"),
    Mutant("restore_masked_with_ids_shuffle_order", "restore_masked gathers in the wrong direction: it scatters "
           "to ids_restore instead of indexing with it", FILE,
           RESTORE, "    joined = torch.cat([kept_x, masked_x], dim=1)\n"
                    "    return torch.zeros_like(joined).scatter(1, ids_restore.unsqueeze(-1).expand_as(joined), joined)\n"),
    Mutant("encoder_no_position_encoding", "the encoder's patches get no position encoding: add "
           "encoder_position_encoding to every projected patch before masking", FILE,
           EMBED, "        return self.encoder_input_projection(patches)\n"),
    Mutant("encoder_cls_with_position_encoding", "CLS gets a position encoding (the first row of the patches' "
           "table); in this MAE only the patches have one", FILE,
           "        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)\n",
           "        cls = self.cls_token + self.encoder_position_encoding[:, :1]\n"
           "        return torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1)\n"),
    Mutant("encoder_cls_after_patches", "CLS is appended after the patches; it goes in front (index 0)", FILE,
           "        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)\n",
           "        return torch.cat([x, self.cls_token.expand(x.shape[0], -1, -1)], dim=1)\n"),
    Mutant("same_permutation_for_every_image", "with ids_shuffle=None every image gets the same permutation: "
           "draw one per image (argsort of torch.rand(B, L))", FILE,
           "    noise = torch.rand(batch_size, length, device=device)  # [B, L]\n",
           "    noise = torch.rand(1, length, device=device).expand(batch_size, -1)\n"),
    Mutant("no_masking_when_ids_shuffle_is_none", "with ids_shuffle=None the patches are kept in order (no random "
           "permutation is drawn): forward_encoder must then draw one", FILE,
           "    noise = torch.rand(batch_size, length, device=device)  # [B, L]\n",
           "    noise = torch.arange(length, device=device, dtype=torch.float32).repeat(batch_size, 1)\n"),
    Mutant("decoder_position_before_restore", "the decoder's position encoding is added in the shuffled order; "
           "restore the order first, then add decoder_position_encoding", FILE,
           DECODER_RESTORE,
           "        shuffled = torch.cat([kept, masked], dim=1) + self.decoder_position_encoding\n"
           "        x = index_sequence(shuffled, ids_restore)\n"),
    Mutant("decoder_zeros_for_masked", "the masked positions are filled with zeros; use the learned "
           "masked_tokens", FILE,
           "        masked = self.masked_tokens.expand(B, ids_restore.shape[1] - K, Ed)  # [B, L - K, Ed]\n",
           "        masked = torch.zeros(B, ids_restore.shape[1] - K, Ed, dtype=x.dtype)\n"),
    Mutant("decoder_cls_dropped_before_decoder", "CLS is not put back in front before the decoder: the decoder "
           "sees it too (the course's step 5), and its output is dropped after", FILE,
           "        x = self.decoder(torch.cat([cls, x], dim=1))                         # [B, 1 + L, Ed]\n" + DECODER_OUT,
           "        x = self.decoder(x)\n        return self.decoder_output_projection(x)\n"),
    Mutant("representation_masked", "forward_encoder_representation masks patches; it must encode every patch "
           "(no random_masking)", FILE,
           "        return self.encoder(self.prepend_cls(self.embed_patches(images)))\n",
           "        return self.forward_encoder(images)[0]\n"),
    Mutant("probe_not_detached", "with detach=True the representation is not detached: the linear probe then "
           "trains the whole MAE", FILE, PROBE, ""),
    Mutant("probe_always_detached", "the representation is always detached: with detach=False the MAE must be "
           "fine-tuned (gradients must reach it)", FILE, PROBE, "        representation = representation.detach()\n"),
]

VARIANTS = [
    Mutant("unpatchify_with_einops", "", FILE,
           "    images = patches.reshape(B, n, n, C, p, p)    # b h w c p1 p2\n" + UNPATCHIFY_PERMUTE
           + "    return images.reshape(B, C, n * p, n * p)\n",
           "    import einops\n"
           "    return einops.rearrange(patches, 'b (h w) (c p1 p2) -> b c (h p1) (w p2)', h=n, p1=p, p2=p)\n"),
    Mutant("random_masking_with_gather_and_bool_mask", "", FILE,
           "    kept = index_sequence(x, ids_shuffle[:, :keep_length])                # [B, K, D]\n"
           "    ids_restore = torch.argsort(ids_shuffle, dim=1)                       # [B, L]\n"
           "    shuffled_mask = torch.ones(ids_shuffle.shape, dtype=x.dtype, device=x.device)\n"
           "    shuffled_mask[:, :keep_length] = 0                                    # 0 kept, 1 masked, shuffled order\n"
           + MASK_ORDER,
           "    kept_ids = ids_shuffle[:, :keep_length]\n"
           "    kept = torch.gather(x, 1, kept_ids.unsqueeze(-1).repeat(1, 1, x.shape[-1]))\n"
           "    ids_restore = torch.argsort(ids_shuffle, dim=1)\n"
           "    mask = torch.ones(ids_shuffle.shape, dtype=torch.bool).scatter(1, kept_ids, False)\n"),
    Mutant("restore_masked_by_scatter", "", FILE,
           RESTORE,
           "    joined = torch.cat([kept_x, masked_x], dim=1)\n"
           "    ids_shuffle = torch.argsort(ids_restore, dim=1)\n"
           "    return torch.zeros_like(joined).scatter(1, ids_shuffle.unsqueeze(-1).expand_as(joined), joined)\n"),
    # the notebook leaves open whether the representation is the whole sequence or the CLS row
    Mutant("representation_returns_cls_only", "", FILE,
           "        return self.encoder(self.prepend_cls(self.embed_patches(images)))\n" + BETWEEN
           + "        representation = self.mae.forward_encoder_representation(images)[:, 0]  # [B, Ee], CLS\n",
           "        return self.encoder(self.prepend_cls(self.embed_patches(images)))[:, 0]\n" + BETWEEN
           + "        representation = self.mae.forward_encoder_representation(images)\n"),
]
