# Open-vocabulary evaluation of CAT-Seg (trained on COCO-Stuff-171 with
# catseg_b16_coco-stuff171.py) on Pascal-Context-59 (VOC2010 val, 5105 images), with the zero-shot
# dataset config (mmseg's dataset class, IoUMetric) and CAT-Seg's test protocol: shortest edge 640,
# sliding 384 windows + global view, no pooling in the class aggregation (CAT-Seg's eval.sh).
#   python tools/test.py configs/silc/catseg_b16_pc59.py \
#       work_dirs/catseg_b16_coco-stuff171/iter_80000.pth
_base_ = ['./catseg_b16_common.py', '../_base_/datasets/zs_pc59.py']

# CAT-Seg's class names (datasets/pc59.json): 'diningtable' where mmseg's dataset has 'table'.
model = dict(
    class_names='{{fileDirname}}/../vocabularies/catseg/pc59.txt',
    decode_head=dict(aggregator=dict(pooling_size=(1, 1))))
test_dataloader = dict(dataset=dict(pipeline={{_base_.catseg_test_pipeline}}))
