# SigLIP 2 ViT-L/16 at 384 px: open_clip `ViT-L-16-SigLIP2-384` (timm trunk
# `vit_large_patch16_siglip_384`), big_vision `siglip2_l16_384.npz`; the towers of
# ./siglip2_vit-l-16-256.py otherwise.
_base_ = ['./siglip2_vit-l-16-256.py']
image_encoder = dict(img_size=384)
