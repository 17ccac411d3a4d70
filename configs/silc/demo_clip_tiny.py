# Demo baseline: CLIP-style image-text contrastive pretraining of the tiny towers on the
# procedural demo data (no distillation head, no EMA teacher). demo_silc_tiny.py adds SILC's
# self-distillation to exactly this run (same towers, data, crops, schedule, seed), and
# demo_distill_tiny.py keeps the distillation alone.
#   python tools/misc/make_demo_data.py --out data/demo
#   python tools/train.py configs/silc/demo_clip_tiny.py
# Validation at the end: image<->text retrieval recall on the 200 held-out pairs and zero-shot
# multi-label classification mAP over the 16 demo concepts. The pipeline also makes the local
# crops SILC uses (unused here), so both runs draw the same random crops for a given seed.
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../_base_/datasets/demo_pretrain.py',
    '../_base_/schedules/demo_pretrain_cpu.py',
    '../_base_/towers/demo_tiny.py',
]
custom_imports = dict(imports=['silc_seg'], allow_failed_imports=False)
default_scope = 'mmseg'

model = dict(
    type='SILC',
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(type='SILCDataPreprocessor', bgr_to_rgb=True),
    contrastive_loss=dict(type='ClipContrastiveLoss'),
    zero_shot_classes={{_base_.demo_classes}},
    zero_shot_templates={{_base_.demo_templates}})

custom_hooks = [
    dict(type='DataStatsHook', interval={{_base_.default_hooks.logger.interval}}),
]
log_processor = dict(by_epoch=False, window_size=20)
# TensorBoard: vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
