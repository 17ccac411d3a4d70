# SigLIP 2 So400m/16 (256 px) towers only: open_clip `ViT-SO400M-16-SigLIP2-256` (timm trunk
# `vit_so400m_patch16_siglip_256`) and big_vision `siglip2_so400m16_256.npz`: no class token,
# attention-pooling (MAP) head, no image projection, bidirectional text tower pooled at the last
# position, Gemma tokenizer (256k pieces). Weights: python tools/model_converters/siglip2silc.py
# SRC DST [--model ViT-SO400M-16-SigLIP2-256]. MLP activations as open_clip/timm (whose outputs
# these towers reproduce): image tower 'gelu_tanh', text tower 'gelu_tanh'; big_vision trained
# every tower with 'gelu_tanh' (docs/siglip2.md, Activations).
_base_ = ['./siglip2_vit-b-16.py']
image_encoder = dict(
    arch=dict(_delete_=True, width=1152, depth=27, num_heads=16, patch_size=16, mlp_ratio=3.7362),
    img_size=256,
    act='gelu_tanh')
text_encoder = dict(
    arch=dict(_delete_=True, width=1152, depth=27, num_heads=16, mlp_ratio=3.7362),
    output_dim=1152)
