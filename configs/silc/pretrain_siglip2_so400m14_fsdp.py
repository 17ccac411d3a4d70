# The SigLIP 2 training recipe (pretrain_siglip2_b16.py) on the SigLIP 2 So400m/14 towers,
# sharded as pretrain_siglip2_vit-l16_fsdp.py (FSDP, activation checkpointing, bf16). The towers
# differ from B/16 in width, depth, heads and MLP ratio (as
# ../_base_/towers/siglip2_vit-so400m-14.py); the positional grid is the released 224 px one
# (16 x 16), resized to the inherited 256 px / 112 px crops (19 x 19 patches, the 256 px crops
# padded to 266 px by the patch embedding, and 8 x 8).
# Memory per 80 GB GPU: docs/scaling.md.
#   torchrun --nproc_per_node 8 tools/train.py configs/silc/pretrain_siglip2_so400m14_fsdp.py \
#       --launcher pytorch --cfg-options train_dataloader.dataset.shards='/data/{00000..04095}.tar'
_base_ = ['./pretrain_siglip2_vit-l16_fsdp.py']

width = 1152
so400m_arch = dict(width=width, depth=27, num_heads=16, mlp_ratio=3.7362)
model = dict(
    image_encoder=dict(arch=dict(so400m_arch, patch_size=14), img_size=224),
    text_encoder=dict(arch=so400m_arch, output_dim=width),
    caption_decoder=dict(in_channels=width, embed_dims=width),
    distill_head=dict(in_channels=width),
    masked_head=dict(in_channels=width),
    # Loss factor 1 for So400m [S2 2.3, unverified; docs/siglip2.md].
    distill_weight=1.0,
    masked_distill_weight=0.25)
