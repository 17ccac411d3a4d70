# OpenCLIP ViT-B-32 towers (open_clip model `ViT-B-32`: GELU, as the LAION/DataComp weights).
# OpenAI's CLIP weights use QuickGELU: openclip_vit-b-32-quickgelu.py.
# Weights: python tools/model_converters/openclip2silc.py SRC DST --model ViT-B-32
_base_ = ['./openclip_vit-b-16.py']
image_encoder = dict(arch='b32')
model = dict(image_encoder=image_encoder)
