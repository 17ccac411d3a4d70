# DINOv2 ViT-B/14 feature tower (facebookresearch/dinov2 hub `dinov2_vitb14`): timm's
# architecture (LayerScale), the hub's position-embedding resize (bicubic, scale factor
# (grid + 0.1) / 37, no antialias), ImageNet normalization.
# Weights: python tools/model_converters/dino2silc.py dinov2_vitb14_pretrain.pth DST
#   --model dinov2_vitb14 [--clip CLIP_SILC.pth]
vfm = dict(
    type='DINOViT',
    arch='vit_base_patch14_dinov2',
    pos_embed_offset=0.1,
    pos_embed_antialias=False)
vfm_mean = [123.675, 116.28, 103.53]
vfm_std = [58.395, 57.12, 57.375]
