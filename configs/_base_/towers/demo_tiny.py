# The tiny towers of the CPU demo (configs/silc/demo_silc_tiny.py, demo_clip_tiny.py, zs_demo.py):
# a ViT with 8 px patches for 64 px global / 32 px local crops and a 3-block text tower over 32
# CLIP BPE tokens (the caption length of ../datasets/demo_pretrain.py), in a 64-d joint space,
# with CLIP's normalization (SILCDataPreprocessor's default).
_base_ = ['./clip_normalization.py']
embed_dim = 64
image_encoder = dict(
    type='SILCVisionTransformer',
    img_size=64,
    patch_size=8,
    width=64,
    depth=4,
    num_heads=4,
    output_dim=embed_dim)
text_encoder = dict(
    type='SILCTextTransformer',
    context_length=32,
    width=64,
    depth=3,
    num_heads=4,
    output_dim=embed_dim)
tokenizer = dict(type='CLIPTokenizer', context_length=32)
# The prompt templates of the demo concepts (zero-shot classification while pretraining and
# zero-shot segmentation of the demo).
demo_templates = ['a picture with {}.', '{}.']
