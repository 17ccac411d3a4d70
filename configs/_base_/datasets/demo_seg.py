# Zero-shot segmentation evaluation on the demo val set (python tools/misc/make_demo_data.py):
# DemoSegDataset, 200 images of 96 px, 16 concept classes (DemoSegDataset.METAINFO), every pixel
# labelled. The images are used as they are (no resize); predictions are scored at that size.
# The labelled train split (seg/*/train) feeds the linear probe of
# silc_seg.evaluation.linear_probe (tools/analysis_tools/silc_study.py).
dataset_type = 'DemoSegDataset'
data_root = 'data/demo/seg'
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
