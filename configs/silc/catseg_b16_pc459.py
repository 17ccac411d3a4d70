# Open-vocabulary evaluation of CAT-Seg (trained with catseg_b16_coco-stuff171.py) on
# Pascal-Context-459 (VOC2010 val, 5105 images, 459 classes), prepared with CAT-Seg's
# datasets/prepare_pascal_context_459.py (16-bit .tif labels, 65535 = ignore); the test protocol
# of catseg_b16_ade847.py.
#   python tools/test.py configs/silc/catseg_b16_pc459.py \
#       work_dirs/catseg_b16_coco-stuff171/iter_80000.pth
_base_ = ['./catseg_b16_ade847.py']

test_dataloader = dict(
    dataset=dict(
        type='PascalContext459Dataset',
        data_root='data/VOCdevkit/VOC2010',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='annotations_detectron2/pc459_val'),
        ann_file='ImageSets/SegmentationContext/val.txt'))
