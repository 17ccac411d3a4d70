# OpenAI CLIP ViT-B/16 towers only: the OpenCLIP layout with QuickGELU (open_clip
# `ViT-B-16-quickgelu`, OpenAI's released weights, including their TorchScript archives).
# Weights: python tools/model_converters/openclip2silc.py SRC DST --model ViT-B-16-quickgelu
_base_ = ['./openclip_vit-b-16.py']
image_encoder = dict(act='quick_gelu')
text_encoder = dict(act='quick_gelu')
