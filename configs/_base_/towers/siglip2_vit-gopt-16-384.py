# SigLIP 2 g-opt/16 at 384 px: open_clip `ViT-gopt-16-SigLIP2-384` (timm trunk
# `vit_giantopt_patch16_siglip_384`), big_vision `siglip2_g-opt16_384.npz`; the towers of
# ./siglip2_vit-gopt-16-256.py otherwise.
_base_ = ['./siglip2_vit-gopt-16-256.py']
image_encoder = dict(img_size=384)
