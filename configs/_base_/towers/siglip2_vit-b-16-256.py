# SigLIP 2 ViT-B/16 at 256 px: open_clip `ViT-B-16-SigLIP2-256` (timm trunk
# `vit_base_patch16_siglip_256`), big_vision `siglip2_b16_256.npz`; the towers of
# ./siglip2_vit-b-16.py otherwise.
_base_ = ['./siglip2_vit-b-16.py']
image_encoder = dict(img_size=256)
