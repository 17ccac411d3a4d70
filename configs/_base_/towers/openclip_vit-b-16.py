# OpenCLIP ViT-B-16 towers only (open_clip model `ViT-B-16`: GELU, as the LAION/DataComp
# weights; SILC ViT-B/16 has the same layout). Task configs (pretraining, zero-shot, CAT-Seg)
# inherit these and build their own model around them.
# Weights: python tools/model_converters/openclip2silc.py SRC DST --model ViT-B-16
_base_ = ['./clip_normalization.py']
embed_dim = 512
image_encoder = dict(
    type='SILCVisionTransformer',
    arch='b16',
    img_size=224,
    output_dim=embed_dim,
    pool_type='cls',
    class_token=True,
    ln_pre=True,
    act='gelu',
    patch_bias=False,
    norm_eps=1e-5)
text_encoder = dict(
    type='SILCTextTransformer', arch='clip-b', context_length=77, output_dim=embed_dim, act='gelu')
tokenizer = dict(type='CLIPTokenizer', context_length=77)
