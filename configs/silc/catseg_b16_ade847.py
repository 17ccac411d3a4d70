# Open-vocabulary evaluation of CAT-Seg (trained on COCO-Stuff-171 with
# catseg_b16_coco-stuff171.py) on ADE20K-847 (ADE20K full validation, 2000 images, 847 classes),
# prepared with CAT-Seg's datasets/prepare_ade20k_full.py (16-bit .tif labels, 65535 = ignore).
# CAT-Seg's test protocol: shortest edge 640, sliding 384 windows + global view, no pooling in the
# class aggregation; the aggregator keeps the 256 classes of highest cost per image
# (num_class_slots).
#   python tools/test.py configs/silc/catseg_b16_ade847.py \
#       work_dirs/catseg_b16_coco-stuff171/iter_80000.pth
_base_ = ['./catseg_b16_common.py']

model = dict(decode_head=dict(aggregator=dict(pooling_size=(1, 1))))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeShortestEdge', scale=640, max_size=2560),
    # labels above 255: mmseg's LoadAnnotations would truncate them to 8 bits
    dict(type='LoadWideAnnotations'),
    dict(type='PackSegInputs')
]
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ADE20K847Dataset',
        data_root='data/ADE20K_2021_17_01',
        data_prefix=dict(
            img_path='images_detectron2/validation',
            seg_map_path='annotations_detectron2/validation'),
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'], ignore_index=65535)
