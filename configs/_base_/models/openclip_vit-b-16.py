# OpenCLIP ViT-B-16 as a SILC/CLIP pretraining model (the towers: ../towers/openclip_vit-b-16.py).
# OpenAI's CLIP weights use QuickGELU: openclip_vit-b-16-quickgelu.py.
# Weights: python tools/model_converters/openclip2silc.py SRC DST --model ViT-B-16
_base_ = ['../towers/openclip_vit-b-16.py']
model = dict(
    type='SILC',
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    # OpenAI CLIP normalization (RGB, 0-255 scale).
    data_preprocessor=dict(
        type='SILCDataPreprocessor',
        mean={{_base_.image_mean}},
        std={{_base_.image_std}},
        bgr_to_rgb=True),
    contrastive_loss=dict(type='ClipContrastiveLoss'))
