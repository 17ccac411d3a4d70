# OpenCLIP ViT-B-16 (open_clip `ViT-B-16`, GELU: the LAION / DataComp weights) as a SILC / CLIP
# pretraining model; OpenAI's CLIP weights use QuickGELU: openclip_vit-b-16-quickgelu.py.
# Weights: python tools/model_converters/openclip2silc.py SRC DST --model ViT-B-16
_base_ = ['./silc_pretrainer.py', '../towers/openclip_vit-b-16.py']
model = dict(
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(mean={{_base_.image_mean}}, std={{_base_.image_std}}))
