# SigLIP 2 NaFlex ViT-B/16 towers: open_clip `ViT-B-16-SigLIP2-naflex` (timm trunk
# `naflexvit_base_patch16_siglip`), big_vision `siglip2_b16_naflex.npz`: each image keeps its
# aspect ratio within a patch budget (max_num_patches; the release is evaluated at 256 to 1024),
# the 16 x 16 positional table is resized to each image's grid (antialiased bilinear, as
# big_vision and timm 1.0.31, whose outputs these towers reproduce). The text tower and
# tokenizer are those of ViT-B-16-SigLIP2.
# Weights: python tools/model_converters/siglip2silc.py SRC DST.
_base_ = ['./siglip2_vit-b-16.py']
image_encoder = dict(
    _delete_=True,
    type='NaFlexVisionTransformer',
    arch='b16',
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
