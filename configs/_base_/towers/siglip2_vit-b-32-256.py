# SigLIP 2 ViT-B/32 (256 px) towers only: open_clip `ViT-B-32-SigLIP2-256` (timm trunk
# `vit_base_patch32_siglip_256`) and big_vision `siglip2_b32_256.npz`: no class token,
# attention-pooling (MAP) head, no image projection, bidirectional text tower pooled at the last
# position, Gemma tokenizer (256k pieces). Weights: python tools/model_converters/siglip2silc.py
# SRC DST [--model ViT-B-32-SigLIP2-256]. MLP activations as open_clip/timm (whose outputs these
# towers reproduce): image tower 'gelu_tanh', text tower 'gelu_tanh'; big_vision trained every
# tower with 'gelu_tanh' (docs/siglip2.md, Activations).
_base_ = ['./siglip2_vit-b-16.py']
image_encoder = dict(arch='b32', img_size=256, act='gelu_tanh')
