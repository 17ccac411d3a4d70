# Zero-shot evaluation on COCO-Stuff-171 (val2017, 5000 images)
# with mmseg's own dataset class and IoUMetric.
# Protocol of SCLIP/NACLIP: short side resized to 448 px (keep ratio), labels at the
# original resolution. Override the location with
# --cfg-options test_dataloader.dataset.data_root=...
dataset_type = 'COCOStuffDataset'
data_root = 'data/coco_stuff164k'

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
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
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017'),
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
