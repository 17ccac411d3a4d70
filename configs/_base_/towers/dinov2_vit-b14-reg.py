# DINOv2 ViT-B/14 with 4 registers (facebookresearch/dinov2 hub `dinov2_vitb14_reg`, ProxyCLIP's
# `vfm_model='dinov2'`): the hub resizes the position embedding to the grid size with
# antialiased bicubic (interpolate_offset=0, interpolate_antialias=True).
# Weights: python tools/model_converters/dino2silc.py dinov2_vitb14_reg4_pretrain.pth DST
#   --model dinov2_vitb14_reg [--clip CLIP_SILC.pth]
vfm = dict(
    type='DINOViT',
    arch='vit_base_patch14_reg4_dinov2',
    pos_embed_offset=0.0,
    pos_embed_antialias=True)
vfm_mean = [123.675, 116.28, 103.53]
vfm_std = [58.395, 57.12, 57.375]
