# CAT-Seg (Cho et al., CVPR 2024; ViT-B/16 recipe, configs/vitb_384.yaml of the official code) on
# SILC ViT-B/16 towers: trained on COCO-Stuff-171 (train2017, 118k images), validated on its
# val2017; open-vocabulary evaluation on other vocabularies with catseg_b16_{ade150,pc59,ade847,
# pc459}.py.
# Recipe: 384 x 384 crops, batch 4 (1 GPU x 4, or scale samples_per_gpu), 80k iterations, AdamW
# lr 2e-4, weight decay 1e-4, cosine decay, gradient-norm clipping at 0.01 over the full model,
# the query/value projection weights of both towers at 0.01 x lr (the rest of both towers
# frozen), one prompt template ("A photo of a {} in the scene"), CAT-Seg's dense last block.
# Every setting with its official source: docs/catseg.md.
# Initialize from a SILC checkpoint or a converted CLIP one (keys image_encoder.*/text_encoder.*):
#   python tools/train.py configs/silc/catseg_b16_coco-stuff171.py \
#       --cfg-options load_from=work_dirs/silc_b16/iter_250000.pth
# (the head is new, so expect "missing keys" for decode_head.* in the log).
_base_ = [
    './catseg_b16_common.py', '../_base_/datasets/catseg_coco-stuff171.py',
    '../_base_/schedules/catseg_adamw_cosine_80k.py'
]
test_dataloader = dict(dataset=dict(pipeline={{_base_.catseg_test_pipeline}}))
