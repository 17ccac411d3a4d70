# SigLIP 2 NaFlex So400m/16 towers: open_clip `ViT-SO400M-16-SigLIP2-naflex` (timm trunk
# `naflexvit_so400m_patch16_siglip`), big_vision `siglip2_so400m16_naflex.npz`; the NaFlex image
# tower of ./siglip2_vit-b-16-naflex.py at So400m size, the text tower of
# ./siglip2_vit-so400m-16-256.py. Weights: python tools/model_converters/siglip2silc.py SRC DST.
_base_ = ['./siglip2_vit-so400m-16-256.py']
image_encoder = dict(
    _delete_=True,
    type='NaFlexVisionTransformer',
    arch=dict(width=1152, depth=27, num_heads=16, patch_size=16, mlp_ratio=3.7362),
    img_size=256,
    max_num_patches=256,
    pos_embed_interp='bilinear',
    output_dim=None,
    pool_type='map',
    class_token=False,
    ln_pre=False,
    act='gelu_tanh',
    patch_bias=True,
    norm_eps=1e-6)
