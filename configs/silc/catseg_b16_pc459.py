# Open-vocabulary evaluation of CAT-Seg (trained on COCO-Stuff-171 with
# catseg_b16_coco-stuff171.py) on Pascal-Context-459 (VOC2010 val, 5105 images, 459 classes),
# prepared with CAT- Seg's datasets/prepare_pascal_context_459.py (16-bit .tif labels, 65535 =
# ignore). CAT-Seg's test protocol: shortest edge 640, sliding 384 windows + global view, no
# pooling in the class aggregation; the aggregator keeps the 256 classes of highest cost per image
# (num_class_slots).
#   python tools/test.py configs/silc/catseg_b16_pc459.py \
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
        type='PascalContext459Dataset',
        data_root='data/VOCdevkit/VOC2010',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='annotations_detectron2/pc459_val'),
        ann_file='ImageSets/SegmentationContext/val.txt',
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'], ignore_index=65535)
