# SILC ViT-B/16 pretraining (arXiv 2310.13355): image-text contrastive loss (CLIP softmax) on each
# global view + local-to-global self-distillation from an EMA teacher.
#   - teacher sees the 2 global crops (224 px), student the 6 local crops (96 px) and the other
#     global crop; MLP head J=512 -> K=65536 prototypes;
#   - student temperature 0.1, teacher temperature warmed up 0.04 -> 0.07, teacher centering with
#     momentum 0.9;
#   - EMA momentum follows a cosine from 0.996 towards 1 but stops below it, so the teacher keeps
#     following the student (and thus the image-text loss) to the end.
# Batch: 128 image-text pairs per GPU (x 8 crops each); on 32 GPUs the global batch is 4096,
# the batch the learning rate of the schedule is set for (see auto_scale_lr there).
# Data: WebDataset shards; point them at yours:
#   bash tools/dist_train.sh configs/silc/pretrain_b16.py 8 \
#       --cfg-options train_dataloader.dataset.shards='/data/webli/{00000..04095}.tar'
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../_base_/models/silc_vit-b16.py',
    '../_base_/datasets/wds_pretrain_224.py',
    '../_base_/schedules/pretrain_adamw_cosine_bf16.py',
]
custom_imports = dict(imports=['silc_seg'], allow_failed_imports=False)
default_scope = 'mmseg'

embed_dim = 512
num_prototypes = 65536
model = dict(
    contrastive_loss=dict(type='ClipContrastiveLoss'),
    distill_head=dict(
        type='DistillationHead',
        in_channels=embed_dim,
        hidden_channels=2048,
        bottleneck_channels=256,
        out_channels=num_prototypes),
    distill_loss=dict(
        type='LocalGlobalDistillLoss',
        out_channels=num_prototypes,
        student_temp=0.1,
        teacher_temp=0.07,
        center_momentum=0.9),
    distill_weight=1.0)
# Drop the update of a step whose loss is not finite (agreed across ranks) instead of failing.
optim_wrapper = dict(skip_nonfinite_steps=True)

custom_hooks = [
    dict(type='EMATeacherHook', momentum=0.996, end_momentum=0.9999),
    dict(
        type='TeacherTempWarmupHook',
        warmup_teacher_temp=0.04,
        teacher_temp=0.07,
        warmup_iters=30000),
    dict(type='DataStatsHook', interval={{_base_.default_hooks.logger.interval}}),
    # --resume continues the WebDataset stream at its saved position instead of re-reading it.
    dict(type='StreamResumeHook'),
]

log_processor = dict(by_epoch=False, window_size=50)
# TensorBoard: add dict(type='TensorboardVisBackend') (needs `tensorboard`).
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
randomness = dict(seed=0, diff_rank_seed=True)
