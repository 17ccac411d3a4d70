# OpenCLIP ViT-L-14 towers (open_clip model `ViT-L-14`: GELU, as the LAION/DataComp weights).
# OpenAI's CLIP weights use QuickGELU: openclip_vit-l-14-quickgelu.py.
# Weights: python tools/model_converters/openclip2silc.py SRC DST --model ViT-L-14
_base_ = ['./openclip_vit-b-16.py']
embed_dim = 768
image_encoder = dict(arch='l14', output_dim=embed_dim)
text_encoder = dict(arch='clip-l', output_dim=embed_dim)
model = dict(image_encoder=image_encoder, text_encoder=text_encoder)
