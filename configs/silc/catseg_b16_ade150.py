# Open-vocabulary evaluation of CAT-Seg (trained on COCO-Stuff-171 with
# catseg_b16_coco-stuff171.py) on ADE20K-150 (ADEChallengeData2016 validation, 2000 images), with
# the zero-shot dataset config (mmseg's dataset class, IoUMetric) and CAT-Seg's test protocol:
# shortest edge 640, sliding 384 windows + global view, no pooling in the class aggregation
# (CAT-Seg's eval.sh).
#   python tools/test.py configs/silc/catseg_b16_ade150.py \
#       work_dirs/catseg_b16_coco-stuff171/iter_80000.pth
_base_ = ['./catseg_b16_common.py', '../_base_/datasets/zs_ade150.py']

model = dict(decode_head=dict(aggregator=dict(pooling_size=(1, 1))))
test_dataloader = dict(dataset=dict(pipeline={{_base_.catseg_test_pipeline}}))
