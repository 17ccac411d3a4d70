# SC-CLIP (Bai et al., 2024) protocol on OpenAI CLIP ViT-B/16, from SuleBai/SC-CLIP
# (scclip_segmentor.py, configs/base_config.py, configs/cfg_*.py, clip/model.py): the whole-tower
# dense forward SCCLIPDense (anomaly tokens filled, similarity-guided last attention, multi-level
# fusion; blocks 8 / 3 / 3..9, class residual 0.3), OpenAI's 80 ImageNet templates, 224x224
# windows with stride 112 (the patch conv ignores pixels that do not fill a patch), logit scale
# 40, no PAMR (pamr_steps=0), towers in fp16 on GPU (clip.load on CUDA).
# Per dataset (the presets ../scclip/*.py): short side, vocabulary file, background thresholds.
_base_ = ['./openai-clip_vit-b16_zero-shot.py']
model = dict(
    image_encoder=dict(pos_embed_resize='scale_factor'),
    dense_variant='plain',
    dense_forward=dict(
        type='SCCLIPDense',
        pre_adjust_index=8,
        post_adjust_index=3,
        fusion_range=(3, 10),
        class_residual=0.3),
    templates='imagenet80',
    precision='fp16',
    pamr=None,
    decode_head=dict(logit_scale=40.0),
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(112, 112), partial_patches='drop'))
