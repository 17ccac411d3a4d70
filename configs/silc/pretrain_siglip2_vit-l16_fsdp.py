# The SigLIP 2 training recipe (pretrain_siglip2_b16.py: sigmoid loss + LocCa decoder, then
# SILC distillation and masked prediction for the last 20%) on the SigLIP 2 ViT-L/16 towers at
# 256 px, sharded with ../_base_/schedules/fsdp_bf16.py (FSDP, activation checkpointing, bf16).
# The towers differ from B/16 only in width, depth and heads (as
# ../_base_/towers/siglip2_vit-l-16-256.py). Memory per 80 GB GPU: docs/scaling.md.
#   torchrun --nproc_per_node 8 tools/train.py configs/silc/pretrain_siglip2_vit-l16_fsdp.py \
#       --launcher pytorch --cfg-options train_dataloader.dataset.shards='/data/{00000..04095}.tar'
_base_ = ['./pretrain_siglip2_b16.py', '../_base_/schedules/fsdp_bf16.py']

width = 1024
model = dict(
    # with_cp off: the strategy checkpoints the blocks inside their FSDP units.
    image_encoder=dict(
        arch=dict(_delete_=True, width=width, depth=24, num_heads=16, patch_size=16),
        with_cp=False),
    text_encoder=dict(
        arch=dict(_delete_=True, width=width, depth=24, num_heads=16),
        output_dim=width,
        with_cp=False),
    # The decoder's width and heads are the towers' [CapPa], as for B/16.
    caption_decoder=dict(in_channels=width, embed_dims=width, num_heads=16),
    distill_head=dict(in_channels=width),
    masked_head=dict(in_channels=width),
    # Loss factor 0.5 for L (B: 0.25) [S2 2.3, unverified; docs/siglip2.md].
    distill_weight=0.5,
    masked_distill_weight=0.125)
# ExtendOptimizerStateHook is left out: it rebuilds a Runner's optimizer, which FlexibleRunner
# builds inside the strategy (the second stage's heads start without AdamW state).
custom_hooks = [
    dict(type='DataStatsHook', interval={{_base_.default_hooks.logger.interval}}),
    dict(type='StreamResumeHook'),
]
model_wrapper_cfg = None  # the strategy wraps the model
optim_wrapper = dict(use_fsdp=True)
