# ClearCLIP (Lan et al., ECCV 2024) protocol on OpenAI CLIP ViT-B/16, from mc-lan/ClearCLIP
# (clearclip_segmentor.py, configs/base_config.py, configs/cfg_*.py, open_clip/transformer.py):
# q-q attention in the last block without residual or FFN (ignore_residual=True), OpenAI's 80
# ImageNet templates, images resized to a short side of 448, 448x448 windows with stride 224
# (windows padded evenly to whole patches, compute_padsize), logit scale 50, no PAMR, towers in
# fp16 (create_model(precision='fp16'), inputs.half()).
_base_ = ['./openai-clip_vit-b16_zero-shot.py']
model = dict(
    image_encoder=dict(pos_embed_resize='scale_factor'),
    dense_variant='clearclip',
    templates='imagenet80',
    precision='fp16',
    pamr=None,
    decode_head=dict(logit_scale=50.0),
    test_cfg=dict(mode='slide', crop_size=(448, 448), stride=(224, 224), partial_patches='pad'))
# ClearCLIP resizes every dataset to a short side of 448 (configs/cfg_*.py).
clearclip_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    # Annotations are loaded after Resize: the metric compares with the original-size labels.
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
