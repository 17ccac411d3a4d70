# Zero-shot segmentation evaluation on the demo val set (python tools/misc/make_demo_data.py).
# 16 concept classes (DemoSegDataset.METAINFO), every pixel labelled. Images are 96 px; the
# tiny demo models pretrain on 64 px global crops, so the test image is resized to that size;
# predictions are scored at the original resolution.
dataset_type = 'DemoSegDataset'
data_root = 'data/demo/seg'
demo_test_size = (64, 64)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=demo_test_size, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
val_dataloader = test_dataloader
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
val_evaluator = test_evaluator
