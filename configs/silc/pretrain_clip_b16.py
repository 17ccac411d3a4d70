# Baseline: CLIP ViT-B/16 pretraining with the image-text contrastive loss only (no distillation
# head, no EMA teacher). The SILC configs (pretrain_b16.py, pretrain_silc-siglip_b16.py) add the
# self-distillation to exactly this run: same towers, data, crops and schedule.
# The pipeline also makes the global and local crops SILC distils on (unused here); drop them
# for speed with
#   --cfg-options "train_dataloader.dataset.pipeline.0.num_views=[0,0,0,2]"
# (the image-text loss uses the contrastive views, see _base_/datasets/wds_pretrain_224.py).
# Batch: 128 image-text pairs per GPU; on 32 GPUs the global batch is 4096, the batch the
# learning rate of the schedule is set for (see auto_scale_lr there).
# Data: WebDataset shards; point them at yours:
#   bash tools/dist_train.sh configs/silc/pretrain_clip_b16.py 8 \
#       --cfg-options train_dataloader.dataset.shards='/data/webli/{00000..04095}.tar'
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../_base_/models/silc_vit-b16.py',
    '../_base_/datasets/wds_pretrain_224.py',
    '../_base_/schedules/pretrain_adamw_cosine_bf16.py',
]
custom_imports = dict(imports=['silc_seg'], allow_failed_imports=False)
default_scope = 'mmseg'

model = dict(
    contrastive_loss=dict(type='ClipContrastiveLoss'),
    # DINO's photometric augmentation of the crops, batched on the GPU (the dataloader workers
    # only decode and crop); see _base_/datasets/wds_pretrain_224.py for the CPU variant.
    data_preprocessor=dict(batch_augments={{_base_.device_augments}}))
# Drop the update of a step whose loss is not finite (agreed across ranks) instead of failing.
optim_wrapper = dict(skip_nonfinite_steps=True)
custom_hooks = [
    dict(type='DataStatsHook', interval={{_base_.default_hooks.logger.interval}}),
    # --resume continues the WebDataset stream at its saved position instead of re-reading it.
    dict(type='StreamResumeHook'),
]
log_processor = dict(by_epoch=False, window_size=50)
# TensorBoard: add dict(type='TensorboardVisBackend') (needs `tensorboard`).
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
randomness = dict(seed=0, diff_rank_seed=True)
