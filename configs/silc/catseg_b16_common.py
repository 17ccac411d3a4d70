# CAT-Seg on SILC ViT-B/16 towers: the CAT-Seg model (configs/_base_/models/catseg.py) on the
# towers of configs/_base_/towers/silc_vit-b16.py, the CAT-Seg test pipeline and runtime shared by
# the training config (catseg_b16_coco-stuff171.py) and the evaluation configs
# (catseg_b16_{ade150,pc59,ade847,pc459}.py). Other towers: inherit another file of
# configs/_base_/towers/ in place of silc_vit-b16.py (docs/catseg.md, "Another tower").
_base_ = [
    'mmseg::_base_/default_runtime.py', '../_base_/towers/silc_vit-b16.py',
    '../_base_/models/catseg.py'
]
custom_imports = dict(imports=['silc_seg'], allow_failed_imports=False)

model = dict(
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(mean={{_base_.image_mean}}, std={{_base_.image_std}}),
    # COCO-Stuff-171 label values 0..170 in mmseg's class order.
    train_class_names='{{fileDirname}}/../vocabularies/catseg/coco-stuff171.txt',
    # None: the evaluated dataset's classes (ModelDatasetMetaHook below).
    class_names=None)

# CAT-Seg test resolution: shortest edge 640 (longest at most 2560); labels at original size.
catseg_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeShortestEdge', scale=640, max_size=2560),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
test_cfg = dict(type='TestLoop')
custom_hooks = [dict(type='ModelDatasetMetaHook')]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
log_processor = dict(by_epoch=False)
