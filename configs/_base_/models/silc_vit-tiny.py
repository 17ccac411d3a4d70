# Tiny SILC towers for CPU demos and tests: ViT-tiny (192-d, 6 blocks, 3 heads) with 8 px patches
# for 64 px global / 32 px local crops, and a 4-block text tower over 32 CLIP BPE tokens.
embed_dim = 128
image_encoder = dict(
    type='SILCVisionTransformer',
    arch='tiny',
    patch_size=8,
    img_size=64,
    output_dim=embed_dim,
    pool_type='cls',
    ln_pre=True)
text_encoder = dict(
    type='SILCTextTransformer', arch='tiny', context_length=32, output_dim=embed_dim)
tokenizer = dict(type='CLIPTokenizer', context_length=32)
model = dict(
    type='SILC',
    image_encoder=image_encoder,
    text_encoder=text_encoder,
    tokenizer=tokenizer,
    data_preprocessor=dict(type='SILCDataPreprocessor', bgr_to_rgb=True),
    contrastive_loss=dict(type='ClipContrastiveLoss'))
