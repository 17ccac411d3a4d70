# SigLIP 2 NaFlex `ViT-SO400M-16-SigLIP2-naflex` as a pretraining model (the towers:
# ../towers/siglip2_vit-so400m-16-naflex.py), sigmoid loss with a learned bias.
_base_ = ['../towers/siglip2_vit-so400m-16-naflex.py']
model = dict(
    type='SILC',
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(
        type='SILCDataPreprocessor',
        mean={{_base_.image_mean}},
        std={{_base_.image_std}},
        bgr_to_rgb=True),
    contrastive_loss=dict(type='SigLipLoss'))
