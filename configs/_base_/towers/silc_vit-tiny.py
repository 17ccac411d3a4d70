# Tiny SILC towers for CPU demos, trials and tests, tower-only (see silc_vit-b16.py): ViT-tiny
# (192-d, 6 blocks, 3 heads) with 8 px patches for 64 px global / 32 px local crops, and a 4-block
# text tower over 32 CLIP BPE tokens.
_base_ = ['./clip_normalization.py']  # image_mean / image_std
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
