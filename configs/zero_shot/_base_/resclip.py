# ResCLIP (Yang et al., CVPR 2025) protocol on OpenAI CLIP ViT-B/16, from yvhangyang/ResCLIP
# (resclip_segmentor.py, configs/base_config.py, configs/cfg_*.py, clip/model.py, test_all.sh
# 'wo_resi resclip 5'): the whole-tower dense forward ResCLIPDense (NACLIP's reduced last block
# with Gaussian std 5, residual attention of blocks 6-9, semantic feedback from a PAMR-refined
# first pass), OpenAI's 80 ImageNet templates, 224x224 windows with stride 112 (the patch conv
# ignores pixels that do not fill a patch), logit scale 40, no final PAMR (pamr_steps=0), towers
# in fp16 on GPU (clip.load on CUDA).
# Per dataset (the presets ../resclip/*.py): short side, windows, vocabulary, feedback threshold
# temp_thd and the (tau, lambda) weights of RCS and SFR, background threshold.
_base_ = ['./openai-clip_vit-b16_zero-shot.py']
model = dict(
    image_encoder=dict(pos_embed_resize='scale_factor'),
    dense_variant='plain',
    # logit_scale: the head's (first-pass probabilities use the same scale as the output).
    dense_forward=dict(
        type='ResCLIPDense',
        rcs_layers=(5, 9),
        gaussian_std=5.0,
        logit_scale=40.0,
        delete_same_entity=True,
        pamr=dict(num_iter=10, dilations=(8, 16))),
    templates='imagenet80',
    precision='fp16',
    pamr=None,
    decode_head=dict(logit_scale=40.0),
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(112, 112), partial_patches='drop'))
