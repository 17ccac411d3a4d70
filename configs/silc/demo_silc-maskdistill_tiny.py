# Demo: SILC (demo_silc_tiny.py, unchanged: towers, data, crops, batch, schedule, seed, hooks)
# plus masked self-distillation and masked language modelling (MaskCLIP of Dong et al., CVPR
# 2023; not Zhou et al.'s training-free MaskCLIP). The B/16 counterpart, with the sources of the
# values, is pretrain_silc-maskdistill_b16.py; the demo shrinks the branch to the tiny towers.
#   python tools/train.py configs/silc/demo_silc-maskdistill_tiny.py
_base_ = ['./demo_silc_tiny.py', '../_base_/objectives/masked_distill_tiny.py']

embed_dim = 64  # demo_silc_tiny.py's joint space
model = dict(
    type='MaskedSelfDistill',
    image_decoder=dict(
        type='MaskedTokenDecoder',
        in_channels=64,
        out_channels=embed_dim,
        embed_dims=64,
        depth=1,
        num_heads=4),
    masked_head=dict(_base_.masked_head, in_channels=embed_dim),
    masked_distill_loss={{_base_.masked_distill_loss}},
    # 40% blockwise on the 8 x 8 grid of a 64-px global crop (as the B/16 config).
    image_mask_ratio=0.4,
    image_mask_strategy='block',
    masked_distill_weight=1.0,
    text_decoder=dict(
        type='MaskedTokenDecoder',
        in_channels=64,
        out_channels=64,
        embed_dims=64,
        depth=1,
        num_heads=4),
    text_mask_ratio=0.15,
    mlm_weight=1.0)
