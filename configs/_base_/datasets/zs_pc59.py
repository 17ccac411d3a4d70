# Zero-shot evaluation on PASCAL Context-59 (VOC2010 val, 5105 images; background ignored)
# with mmseg's own dataset class and IoUMetric.
# Protocol of SCLIP/NACLIP: short side resized to 336 px (keep ratio), labels at the
# original resolution. Override the location with
# --cfg-options test_dataloader.dataset.data_root=...
dataset_type = 'PascalContextDataset59'
data_root = 'data/VOCdevkit/VOC2010'

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
        reduce_zero_label=True,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassContext'),
        ann_file='ImageSets/SegmentationContext/val.txt',
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
