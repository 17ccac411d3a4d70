# OpenAI CLIP ViT-L-14 towers: the OpenCLIP layout with QuickGELU (open_clip `ViT-L-14-quickgelu`,
# OpenAI's released weights, including their TorchScript archives).
# Weights: python tools/model_converters/openclip2silc.py SRC DST --model ViT-L-14-quickgelu
_base_ = ['./openclip_vit-l-14.py']
image_encoder = dict(act='quick_gelu')
text_encoder = dict(act='quick_gelu')
model = dict(image_encoder=image_encoder, text_encoder=text_encoder)
