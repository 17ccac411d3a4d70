# OpenCLIP ViT-B-16 towers (open_clip model `ViT-B-16`: GELU, as the LAION/DataComp weights).
# OpenAI's CLIP weights use QuickGELU: openclip_vit-b-16-quickgelu.py.
# Weights: python tools/model_converters/openclip2silc.py SRC DST --model ViT-B-16
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
    type='SILCTextTransformer',
    arch='clip-b',
    context_length=77,
    output_dim=embed_dim,
    act='gelu')
tokenizer = dict(type='CLIPTokenizer', context_length=77)
model = dict(
    type='SILC',
    image_encoder=image_encoder,
    text_encoder=text_encoder,
    tokenizer=tokenizer,
    # OpenAI CLIP normalization (RGB, 0-255 scale).
    data_preprocessor=dict(
        type='SILCDataPreprocessor',
        mean=[122.7709383, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305],
        bgr_to_rgb=True),
    contrastive_loss=dict(type='ClipContrastiveLoss'))
