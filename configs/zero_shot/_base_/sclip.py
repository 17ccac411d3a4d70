# SCLIP (Wang et al., ECCV 2024) protocol on OpenAI CLIP ViT-B/16, from wangf3014/SCLIP
# (clip_segmentor.py, configs/base_config.py, configs/cfg_*.py, clip/model.py):
# correlative self-attention in the last block (residual and FFN kept), OpenAI's 80 ImageNet
# templates, 224x224 windows with stride 112 (no padding: the patch conv ignores pixels that do
# not fill a patch), logit scale 40, no PAMR (pamr_steps=0), towers in fp16 on GPU.
# Per dataset (the presets ../sclip/*.py): short side, vocabulary file, background thresholds.
_base_ = ['./openai-clip_vit-b16_zero-shot.py']
model = dict(
    image_encoder=dict(pos_embed_resize='scale_factor'),
    dense_variant='sclip',
    templates='imagenet80',
    precision='fp16',
    pamr=None,
    decode_head=dict(logit_scale=40.0),
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(112, 112), partial_patches='drop'))
