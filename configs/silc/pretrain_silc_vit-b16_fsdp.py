# SILC ViT-B/16 pretraining (pretrain_b16.py) sharded with FSDP, activation checkpointing and bf16
# (../_base_/schedules/fsdp_bf16.py): the B/16 step of the GPU kit, and the recipe to use when the
# EMA teacher and AdamW state of data-parallel replicas do not fit.
#   torchrun --nproc_per_node 8 tools/train.py configs/silc/pretrain_silc_vit-b16_fsdp.py \
#       --launcher pytorch --cfg-options train_dataloader.dataset.shards='/data/{00000..04095}.tar'
_base_ = ['./pretrain_b16.py', '../_base_/schedules/fsdp_bf16.py']

# The strategy checkpoints the blocks inside their FSDP units: the towers' own with_cp stays off.
model = dict(image_encoder=dict(with_cp=False), text_encoder=dict(with_cp=False))
# PerParameterGradClipHook reduces each parameter's norm over the shards under FSDP.
# ExtendOptimizerStateHook is left out: it rebuilds a Runner's optimizer, which FlexibleRunner
# builds inside the strategy.
custom_hooks = [
    dict(type='PerParameterGradClipHook', max_norm=3.0),
    dict(type='FreezeLastLayerHook', freeze_iters=313),
    dict(type='DataStatsHook', interval={{_base_.default_hooks.logger.interval}}),
    dict(type='StreamResumeHook'),
]
# FSDPStrategy wraps the model (strategy.model_wrapper).
model_wrapper_cfg = None
optim_wrapper = dict(use_fsdp=True)
