# Demo: SILC pretraining of a tiny ViT (patch 8) on the procedural demo data, on CPU in minutes.
#   python tools/misc/make_demo_data.py --out data/demo
#   python tools/train.py configs/silc/demo_silc_tiny.py
# 2 global crops of 64 px (8x8 patches) and 6 local crops of 32 px; batch 32 pairs; 200 iterations
# (6,400 pairs seen: about 2 passes over the 3,000 training pairs).
# Validation at the end: image<->text retrieval recall on the 200 held-out pairs and zero-shot
# multi-label classification mAP over the 16 demo concepts.
# demo_clip_tiny.py is the same run without self-distillation.
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../_base_/datasets/demo_pretrain.py',
    '../_base_/schedules/demo_pretrain_cpu.py',
    '../_base_/towers/demo_tiny.py',
]
custom_imports = dict(imports=['silc_seg'], allow_failed_imports=False)
default_scope = 'mmseg'

num_prototypes = 1024
model = dict(
    type='SILC',
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(type='SILCDataPreprocessor', bgr_to_rgb=True),
    contrastive_loss=dict(type='ClipContrastiveLoss'),
    distill_head=dict(
        type='DistillationHead',
        in_channels={{_base_.embed_dim}},
        hidden_channels=256,
        bottleneck_channels=64,
        out_channels=num_prototypes),
    distill_loss=dict(
        type='LocalGlobalDistillLoss',
        out_channels=num_prototypes,
        student_temp=0.1,
        teacher_temp=0.07,
        center_momentum=0.9),
    zero_shot_classes={{_base_.demo_classes}},
    zero_shot_templates={{_base_.demo_templates}})

# A short run: a faster-moving teacher than the paper's 0.996 (time constant 100 iterations).
ema_teacher_hook = dict(type='EMATeacherHook', momentum=0.99, end_momentum=0.999)
teacher_temp_hook = dict(
    type='TeacherTempWarmupHook', warmup_teacher_temp=0.04, teacher_temp=0.07, warmup_iters=100)
data_stats_hook = dict(type='DataStatsHook', interval={{_base_.default_hooks.logger.interval}})
custom_hooks = [ema_teacher_hook, teacher_temp_hook, data_stats_hook]
log_processor = dict(by_epoch=False, window_size=20)
# TensorBoard: vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
