# Zero-shot evaluation shared by the zs_<dataset>.py files: mmseg's dataset classes and IoUMetric,
# the image resized to a short side of 336 px (keep ratio; SCLIP's and NACLIP's protocol) and the
# labels loaded after the resize, so that predictions are scored at the original resolution.
# A dataset file sets the dataset type, location and split, and the short side where it differs.
# Another location: --cfg-options test_dataloader.dataset.data_root=...
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(reduce_zero_label=False, pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
