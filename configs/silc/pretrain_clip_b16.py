# Baseline: CLIP ViT-B/16 pretraining with the image-text contrastive loss only (no distillation
# head, no EMA teacher), on the same data, crops and schedule as pretrain_b16.py. The local crops
# are still produced by the pipeline but unused; drop them for speed with
#   --cfg-options "train_dataloader.dataset.pipeline.0.num_views=[1,1,0]"
_base_ = ['./pretrain_b16.py']

model = dict(distill_head=None, distill_loss=None)
custom_hooks = [
    dict(type='DataStatsHook', interval={{_base_.default_hooks.logger.interval}}),
    # --resume continues the WebDataset stream at its saved position instead of re-reading it.
    dict(type='StreamResumeHook'),
]
