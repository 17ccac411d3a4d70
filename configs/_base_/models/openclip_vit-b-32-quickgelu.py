# OpenAI CLIP ViT-B-32 towers: the OpenCLIP layout with QuickGELU (open_clip `ViT-B-32-quickgelu`,
# OpenAI's released weights, including their TorchScript archives).
# Weights: python tools/model_converters/openclip2silc.py SRC DST --model ViT-B-32-quickgelu
_base_ = ['./openclip_vit-b-32.py']
image_encoder = dict(act='quick_gelu')
text_encoder = dict(act='quick_gelu')
model = dict(image_encoder=image_encoder, text_encoder=text_encoder)
