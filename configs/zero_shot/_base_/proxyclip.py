# ProxyCLIP (Lan et al., ECCV 2024) protocol on OpenAI CLIP ViT-B/16 with DINO ViT-B/8 as the
# proxy VFM, from mc-lan/ProxyCLIP (proxyclip_segmentor.py, configs/base_config.py,
# configs/cfg_*.py, open_clip/transformer.py): the last CLIP block's attention replaced by the
# VFM's thresholded patch similarity (beta 1.2, gamma 3.0; no residual, no FFN), CLIP values
# resized to the VFM grid, OpenAI's 80 ImageNet templates, 336x336 windows with stride 112
# padded evenly to multiples of 56 (compute_padsize), logit scale 40, no PAMR, both towers in
# fp16 on GPU (create_model(precision='fp16'), vfm.half()).
# Another VFM (the settings of ../../_base_/towers/dino*.py), e.g. DINOv2 ViT-B/14 with registers:
#   --cfg-options model.dense_forward.vfm.arch=vit_base_patch14_reg4_dinov2 \
#       model.dense_forward.vfm.pos_embed_offset=0.0 \
#       model.dense_forward.vfm.pos_embed_antialias=True
# Weights (CLIP and VFM in one file, as tools/test.py loads one checkpoint):
#   python tools/model_converters/openclip2silc.py ViT-B-16.pt clip_b16.pth \
#       --model ViT-B-16-quickgelu
#   python tools/model_converters/dino2silc.py dino_vitbase8_pretrain.pth \
#       proxyclip_b16_dino-b8.pth --model dino_vitb8 --clip clip_b16.pth
_base_ = ['./openai-clip_vit-b16_zero-shot.py', '../../_base_/towers/dino_vit-b8.py']
model = dict(
    image_encoder=dict(pos_embed_resize='scale_factor'),
    dense_variant='plain',
    dense_forward=dict(
        type='ProxyCLIPDense',
        vfm={{_base_.vfm}},
        beta=1.2,
        gamma=3.0,
        clip_mean={{_base_.image_mean}},
        clip_std={{_base_.image_std}},
        vfm_mean={{_base_.vfm_mean}},
        vfm_std={{_base_.vfm_std}}),
    templates='imagenet80',
    precision='fp16',
    pamr=None,
    decode_head=dict(logit_scale=40.0),
    test_cfg=dict(
        mode='slide',
        crop_size=(336, 336),
        stride=(112, 112),
        partial_patches='pad',
        pad_multiple=56))
# ProxyCLIP's short sides (configs/cfg_*.py): 336, except ADE20K and Cityscapes (448).
proxyclip_test_pipeline_336 = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    # Annotations are loaded after Resize: the metric compares with the original-size labels.
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
proxyclip_test_pipeline_448 = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
