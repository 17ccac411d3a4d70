# DINO ViT-B/8 feature tower (facebookresearch/dino hub `dino_vitb8`): timm's architecture with
# the hub's position-embedding resize (bicubic, scale factor (grid + 0.1) / 28), ImageNet
# normalization. Weights: python tools/model_converters/dino2silc.py
#   dino_vitbase8_pretrain.pth DST --model dino_vitb8 [--clip CLIP_SILC.pth]
vfm = dict(
    type='DINOViT',
    arch='vit_base_patch8_224.dino',
    pos_embed_offset=0.1,
    pos_embed_antialias=False)
vfm_mean = [123.675, 116.28, 103.53]
vfm_std = [58.395, 57.12, 57.375]
