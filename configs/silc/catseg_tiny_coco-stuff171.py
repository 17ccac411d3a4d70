# CAT-Seg for CPU trials: the tiny SILC towers (configs/_base_/towers/silc_vit-tiny.py, 64 px
# input, 8 x 8 patch grid) with a small head, trained on the COCO-Stuff-171 layout of
# catseg_b16_coco-stuff171.py (see docs/catseg.md) with CAT-Seg's recipe at a fraction of the
# sizes. Nothing of the head depends on the towers' sizes: swap the towers' base and it still
# builds. Point it at a dataset, e.g. a few images in the same layout:
#   python tools/train.py configs/silc/catseg_tiny_coco-stuff171.py \
#       --cfg-options train_dataloader.dataset.data_root=data/coco_stuff_small \
#       val_dataloader.dataset.data_root=data/coco_stuff_small train_cfg.max_iters=200
# tests/test_catseg/test_configs_and_data.py runs it for a few iterations on a generated layout.
_base_ = [
    'mmseg::_base_/default_runtime.py', '../_base_/towers/silc_vit-tiny.py',
    '../_base_/models/catseg.py', '../_base_/datasets/catseg_coco-stuff171.py',
    '../_base_/schedules/catseg_adamw_cosine_80k.py'
]
custom_imports = dict(imports=['silc_seg'], allow_failed_imports=False)

crop_size = (64, 64)
# CAT-Seg's model (configs/_base_/models/catseg.py) on the tiny towers, with a smaller head;
# vision width, text dims, template count and guidance layers follow from the towers.
model = dict(
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(mean={{_base_.image_mean}}, std={{_base_.image_std}}, size=crop_size),
    decode_head=dict(
        guidance_upsample_dims=(32, 16),
        aggregator=dict(
            embed_dims=32,
            appearance_guidance_dims=32,
            text_guidance_dims=32,
            decoder_dims=(32, 16),
            decoder_guidance_dims=(32, 16),
            decoder_guidance_proj_dims=(8, 4),
            num_layers=1,
            num_heads=2,
            window_size=4,
            num_class_slots=64)),
    train_class_names='{{fileDirname}}/../vocabularies/catseg/coco-stuff171.txt',
    class_names=None,
    image_size=crop_size,
    # the image resized to 96 x 96, 2 x 2 windows of 64 (stride 32) plus the whole image
    test_cfg=dict(mode='slide', out_size=(96, 96), crop_size=crop_size, stride=(32, 32)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='ResizeShortestEdge', scale=crop_size[0], max_size=4 * crop_size[0]),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeShortestEdge', scale=96, max_size=384),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    num_workers=0, persistent_workers=False, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
test_evaluator = {{_base_.val_evaluator}}

# CAT-Seg's optimization on a short schedule
max_iters = 200
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters,
        eta_min=0.0,
        by_epoch=False,
        begin=0,
        end=max_iters)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
test_cfg = dict(type='TestLoop')
custom_hooks = [dict(type='ModelDatasetMetaHook')]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    # Crash-safe saves, and one save + exit 75 on SIGTERM / SIGUSR1 (docs/reliability.md).
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=False, interval=max_iters),
    visualization=dict(type='SegVisualizationHook', interval=1),
    preemption=dict(type='PreemptionHook'))
log_processor = dict(by_epoch=False)
