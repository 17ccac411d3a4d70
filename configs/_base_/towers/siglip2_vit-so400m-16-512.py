# SigLIP 2 So400m/16 at 512 px: open_clip `ViT-SO400M-16-SigLIP2-512` (timm trunk
# `vit_so400m_patch16_siglip_512`), big_vision `siglip2_so400m16_512.npz`; the towers of
# ./siglip2_vit-so400m-16-256.py otherwise.
_base_ = ['./siglip2_vit-so400m-16-256.py']
image_encoder = dict(img_size=512)
