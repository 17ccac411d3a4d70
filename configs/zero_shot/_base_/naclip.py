# NACLIP (Hajimiri et al., WACV 2025) protocol on OpenAI CLIP ViT-B/16, from sinahmr/NACLIP
# (naclip.py, configs/cfg_*.py at commit defb7c94, clip/model.py, README "main results":
# test_all.sh reduced naclip 5 on): reduced last block (k-k attention + Gaussian neighbourhood
# bias, std 5, no residual, no FFN), OpenAI's 80 ImageNet templates, 224x224 windows with stride
# 112 (whole image on VOC-20/21), logit scale 40 everywhere, PAMR with 10 iterations and
# dilations (8, 16), towers in fp16 on GPU. Without PAMR (the paper's main table):
# --cfg-options model.pamr=None.
_base_ = ['./openai-clip_vit-b16_zero-shot.py']
model = dict(
    image_encoder=dict(pos_embed_resize='scale_factor'),
    dense_variant='naclip',
    templates='imagenet80',
    precision='fp16',
    pamr=dict(num_iter=10, dilations=(8, 16)),
    decode_head=dict(logit_scale=40.0),
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(112, 112), partial_patches='drop'))
