# SigLIP 2 So400m/14 at 378 px: open_clip `ViT-SO400M-14-SigLIP2-378` (timm trunk
# `vit_so400m_patch14_siglip_378`), big_vision `siglip2_so400m14_384.npz`; the towers of
# ./siglip2_vit-so400m-14.py otherwise.
_base_ = ['./siglip2_vit-so400m-14.py']
image_encoder = dict(img_size=378)
