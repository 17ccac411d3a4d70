# SigLIP 2 So400m/16 at 384 px: open_clip `ViT-SO400M-16-SigLIP2-384` (timm trunk
# `vit_so400m_patch16_siglip_384`), big_vision `siglip2_so400m16_384.npz`; the towers of
# ./siglip2_vit-so400m-16-256.py otherwise.
_base_ = ['./siglip2_vit-so400m-16-256.py']
image_encoder = dict(img_size=384)
