# SigLIP 2 ViT-B/16 at 384 px: open_clip `ViT-B-16-SigLIP2-384` (timm trunk
# `vit_base_patch16_siglip_384`), big_vision `siglip2_b16_384.npz`; the towers of
# ./siglip2_vit-b-16.py otherwise.
_base_ = ['./siglip2_vit-b-16.py']
image_encoder = dict(img_size=384)
