# Zero-shot evaluation on PASCAL VOC 2012 val with background (21 classes)
# with mmseg's own dataset class and IoUMetric.
# Protocol of SCLIP/NACLIP: short side resized to 336 px (keep ratio), labels at the
# original resolution. Override the location with
# --cfg-options test_dataloader.dataset.data_root=...
dataset_type = 'PascalVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    # Annotations are loaded after Resize: the metric compares with the original-size labels.
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        reduce_zero_label=False,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
