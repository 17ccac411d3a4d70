# SILC ViT-L/16 pretraining with FSDP, activation checkpointing and bf16 (GPUs): pretrain_b16.py
# (CLIP loss + local-to-global self-distillation, DINO's stability recipe) on ViT-L/16 towers,
# sharded with ../_base_/schedules/fsdp_bf16.py. Memory per 80 GB GPU: docs/scaling.md.
#   torchrun --nproc_per_node 8 tools/train.py configs/silc/pretrain_silc_vit-l16_fsdp.py \
#       --launcher pytorch --cfg-options train_dataloader.dataset.shards='/data/{00000..04095}.tar'
# (or mmseg's tools/train.py with custom_imports: runner_type picks the FlexibleRunner).
_base_ = ['./pretrain_b16.py', '../_base_/schedules/fsdp_bf16.py']

embed_dim = 768
model = dict(
    # ViT-L/16 (width 1024, 24 blocks, 16 heads) with class-token pooling; OpenCLIP ViT-L text
    # tower ('clip-l': width 768, 12 blocks); 768-d joint space. with_cp off: the strategy
    # checkpoints the blocks inside their FSDP units.
    image_encoder=dict(
        arch=dict(_delete_=True, width=1024, depth=24, num_heads=16, patch_size=16, mlp_ratio=4.0),
        output_dim=embed_dim,
        with_cp=False),
    text_encoder=dict(arch='clip-l', output_dim=embed_dim, with_cp=False),
    distill_head=dict(in_channels=embed_dim))
# PerParameterGradClipHook reduces each parameter's norm over the shards under FSDP.
# ExtendOptimizerStateHook is left out: it rebuilds a Runner's optimizer, which FlexibleRunner
# builds inside the strategy.
custom_hooks = [
    dict(type='PerParameterGradClipHook', max_norm=3.0),
    dict(type='FreezeLastLayerHook', freeze_iters=313),
    dict(type='DataStatsHook', interval={{_base_.default_hooks.logger.interval}}),
    dict(type='StreamResumeHook'),
]
# FSDPStrategy wraps the model (strategy.model_wrapper); bf16 loss scaling is not needed, but a
# GradScaler, if any, must be FSDP's sharded one.
model_wrapper_cfg = None
optim_wrapper = dict(use_fsdp=True)
