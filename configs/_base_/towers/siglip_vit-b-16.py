# SigLIP ViT-B/16 (224 px) towers only: open_clip `ViT-B-16-SigLIP` (timm image trunk) and
# big_vision `siglip_b16_224`: no class token, attention-pooling (MAP) head, no image projection,
# bidirectional text tower pooled at the last position (trained with a sigmoid loss).
# Weights: python tools/model_converters/openclip2silc.py SRC DST --model ViT-B-16-SigLIP
#          python tools/model_converters/bigvision2silc.py SRC.npz DST --model ViT-B-16-SigLIP
# big_vision computes GELU with the tanh approximation; timm and OpenCLIP (whose outputs these
# towers reproduce exactly) use the exact GELU ('gelu_tanh' gives big_vision's).
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
text_encoder = dict(type='SILCTextTransformer', arch='siglip-b', act='gelu')
# The T5 English SentencePiece model SigLIP was trained with; put a copy of
# https://storage.googleapis.com/t5-data/vocabs/cc_en.32000/sentencepiece.model at model_file.
tokenizer = dict(
    type='SentencePieceTokenizer',
    model_file='checkpoints/siglip/cc_en.32000.model',
    context_length=64)
# SigLIP normalization: [-1, 1].
image_mean = [127.5] * 3
image_std = [127.5] * 3
