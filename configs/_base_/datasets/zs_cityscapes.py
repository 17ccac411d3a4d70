# Zero-shot evaluation on Cityscapes val (19 classes, 500 images)
# with mmseg's own dataset class and IoUMetric.
# Protocol of SCLIP/NACLIP: short side resized to 560 px (keep ratio), labels at the
# original resolution. Override the location with
# --cfg-options test_dataloader.dataset.data_root=...
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes'

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 560), keep_ratio=True),
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
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
