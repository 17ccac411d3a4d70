# COCO-Stuff-171 as CAT-Seg trains on it (train2017, 118k images; validated on val2017 at the
# test resolution of ../catseg_runtime.py): detectron2's ResizeShortestEdge(384, max 1333), an
# absolute 384 crop, flip and SSD colour augmentation (docs/catseg.md).
_base_ = ['./zs_coco-stuff171.py']
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='ResizeShortestEdge', scale=384, max_size=1333),
    dict(type='RandomCrop', crop_size=(384, 384), cat_max_ratio=1.0),
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
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='ResizeShortestEdge', scale=640, max_size=2560),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')
        ]))
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
