# Open-vocabulary evaluation on ADE20K-150 of CAT-Seg on SigLIP 2 ViT-B/16 towers (trained with
# catseg_siglip2_b16_coco-stuff171.py), with CAT-Seg's test protocol as catseg_b16_ade150.py.
_base_ = ['./catseg_siglip2_b16_common.py', '../_base_/datasets/zs_ade150.py']

model = dict(decode_head=dict(aggregator=dict(pooling_size=(1, 1))))
test_dataloader = dict(dataset=dict(pipeline={{_base_.catseg_test_pipeline}}))
