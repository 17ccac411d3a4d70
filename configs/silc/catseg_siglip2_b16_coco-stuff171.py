# CAT-Seg (ViT-B recipe of catseg_b16_coco-stuff171.py, every setting in docs/catseg.md) on
# SigLIP 2 ViT-B/16 towers at 384 px (catseg_siglip2_b16_common.py): trained on COCO-Stuff-171;
# open-vocabulary evaluation with catseg_siglip2_b16_ade150.py. Initialize from converted weights:
#   python tools/model_converters/siglip2silc.py siglip2_b16_384.npz siglip2_b16_384.safetensors
#   python tools/train.py configs/silc/catseg_siglip2_b16_coco-stuff171.py \
#       --cfg-options load_from=siglip2_b16_384.safetensors
_base_ = [
    './catseg_siglip2_b16_common.py', '../_base_/datasets/catseg_coco-stuff171.py',
    '../_base_/schedules/catseg_adamw_cosine_80k.py'
]
test_dataloader = dict(dataset=dict(pipeline={{_base_.catseg_test_pipeline}}))
