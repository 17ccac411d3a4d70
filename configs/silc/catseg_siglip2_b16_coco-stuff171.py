# CAT-Seg (ViT-B recipe of catseg_b16_coco-stuff171.py, every setting in docs/catseg.md) on
# SigLIP 2 ViT-B/16 towers at 384 px (catseg_siglip2_b16_common.py): trained on COCO-Stuff-171;
# open-vocabulary evaluation with catseg_siglip2_b16_ade150.py. Initialize from converted weights:
#   python tools/model_converters/siglip2silc.py siglip2_b16_384.npz siglip2_b16_384.safetensors
#   python tools/train.py configs/silc/catseg_siglip2_b16_coco-stuff171.py \
#       --cfg-options load_from=siglip2_b16_384.safetensors
_base_ = [
    './catseg_siglip2_b16_common.py', '../_base_/datasets/zs_coco-stuff171.py',
    '../_base_/schedules/catseg_adamw_cosine_80k.py'
]
crop_size = (384, 384)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    # detectron2's ResizeShortestEdge(384, max 1333) and absolute 384 crop, flip, SSD colour aug.
    dict(type='ResizeShortestEdge', scale=384, max_size=1333),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='COCOStuffDataset',
        data_root={{_base_.data_root}},
        data_prefix=dict(img_path='images/train2017', seg_map_path='annotations/train2017'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='COCOStuffDataset',
        data_root={{_base_.data_root}},
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017'),
        pipeline={{_base_.catseg_test_pipeline}}))
test_dataloader = dict(dataset=dict(pipeline={{_base_.catseg_test_pipeline}}))
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
