# DINO ViT-B/16 feature tower (facebookresearch/dino hub `dino_vitb16`), as dino_vit-b8.py.
# Weights: python tools/model_converters/dino2silc.py dino_vitbase16_pretrain.pth DST
#   --model dino_vitb16 [--clip CLIP_SILC.pth]
vfm = dict(
    type='DINOViT',
    arch='vit_base_patch16_224.dino',
    pos_embed_offset=0.1,
    pos_embed_antialias=False)
vfm_mean = [123.675, 116.28, 103.53]
vfm_std = [58.395, 57.12, 57.375]
