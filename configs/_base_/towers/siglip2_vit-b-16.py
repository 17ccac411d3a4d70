# SigLIP 2 ViT-B/16 (224 px) towers only: open_clip `ViT-B-16-SigLIP2` (timm trunk
# `vit_base_patch16_siglip_224`) and big_vision `siglip2_b16_224.npz`: no class token,
# attention-pooling (MAP) head, no image projection, bidirectional text tower pooled at the last
# position, Gemma tokenizer (256k pieces). Weights: python tools/model_converters/siglip2silc.py
# SRC DST [--model ViT-B-16-SigLIP2]. MLP activations as open_clip/timm (whose outputs these towers
# reproduce): image tower 'gelu', text tower 'gelu_tanh'; big_vision trained every tower with
# 'gelu_tanh' (docs/siglip2.md, Activations).
image_encoder = dict(
    type='SILCVisionTransformer',
    arch='b16',
    img_size=224,
    output_dim=None,
    pool_type='map',
    class_token=False,
    ln_pre=False,
    act='gelu',
    patch_bias=True,
    norm_eps=1e-6)
# The SigLIP 2 text tower of every size; the larger towers' bases set arch and output_dim.
text_encoder = dict(
    type='SILCTextTransformer',
    arch='siglip-b',
    context_length=64,
    vocab_size=256000,
    causal=False,
    pool_type='last',
    proj_bias=True,
    norm_eps=1e-6,
    act='gelu_tanh')
# Gemma SentencePiece model (docs/siglip2.md, Tokenizer): put a copy at model_file.
tokenizer = dict(
    type='GemmaTokenizer',
    model_file='checkpoints/siglip2/gemma_tokenizer.model',
    context_length=64,
    clean='lower')
# SigLIP normalization: [-1, 1].
image_mean = [127.5] * 3
image_std = [127.5] * 3
