# SILC ViT-B/16 pretraining (arXiv 2310.13355): pretrain_clip_b16.py (image-text contrastive
# loss) + local-to-global self-distillation from an EMA teacher (2 global 224-px and 6 local
# 96-px crops, K = 65536 prototypes), with DINO's stability recipe. Where each value comes
# from: docs/pretraining.md.
#   bash tools/dist_train.sh configs/silc/pretrain_b16.py 8 \
#       --cfg-options train_dataloader.dataset.shards='/data/webli/{00000..04095}.tar'
_base_ = ['./pretrain_clip_b16.py', '../_base_/objectives/silc_distill.py']

embed_dim = 512
model = dict(
    image_encoder=dict(drop_path_rate=0.1),
    distill_head=dict(_base_.distill_head, in_channels=embed_dim),
    distill_loss={{_base_.distill_loss}},
    distill_weight=1.0,
    # Fixed momentum 0.996 at batch 1024, rescaled to the actual global batch; teacher
    # temperature 0.04 -> 0.07 over 30 ImageNet epochs of samples at batch 4096.
    teacher=dict(
        momentum=0.996,
        end_momentum=None,  # a value gives DINO's cosine schedule towards it (below 1)
        base_batch_size=1024,
        temperature=0.07,
        warmup_temperature=0.04,
        warmup_iters=9390))
# Per-parameter clipping (PerParameterGradClipHook) replaces the global-norm clipping.
optim_wrapper = dict(clip_grad=None)

custom_hooks = [
    dict(type='PerParameterGradClipHook', max_norm=3.0),
    dict(type='FreezeLastLayerHook', freeze_iters=313),
    dict(type='DataStatsHook', interval={{_base_.default_hooks.logger.interval}}),
    # --resume of a contrastive-only checkpoint: the head starts with a fresh optimizer state.
    dict(type='ExtendOptimizerStateHook'),
    # --resume continues the WebDataset stream at its saved position instead of re-reading it.
    dict(type='StreamResumeHook'),
]
