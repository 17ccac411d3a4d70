# SILC ViT-B/16 towers (arXiv 2310.13355): ViT-B/16 image tower with class-token pooling and a
# 512-d projection, CLIP-style causal text tower with CLIP's BPE tokenizer. The layout is OpenCLIP's
# ViT-B-16, so converted OpenCLIP weights (openclip_vit-b-16.py) can initialize it.
# The distillation head (J=512 -> K prototypes) and losses are set by the pretraining configs.
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
    data_preprocessor=dict(
        type='SILCDataPreprocessor',
        mean=[122.7709383, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305],
        bgr_to_rgb=True),
    contrastive_loss=dict(type='ClipContrastiveLoss'))
