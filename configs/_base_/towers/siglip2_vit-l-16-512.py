# SigLIP 2 ViT-L/16 at 512 px: open_clip `ViT-L-16-SigLIP2-512` (timm trunk
# `vit_large_patch16_siglip_512`), big_vision `siglip2_l16_512.npz`; the towers of
# ./siglip2_vit-l-16-256.py otherwise. timm's `vit_large_patch16_siglip_512` uses 'gelu_tanh'
# (unlike the 256 px trunk).
_base_ = ['./siglip2_vit-l-16-256.py']
image_encoder = dict(img_size=512, act='gelu_tanh')
