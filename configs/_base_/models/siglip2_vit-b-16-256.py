# SigLIP 2 `ViT-B-16-SigLIP2-256` as a pretraining model (the towers:
# ../towers/siglip2_vit-b-16-256.py), sigmoid loss with a learned bias.
_base_ = ['./silc_pretrainer.py', '../towers/siglip2_vit-b-16-256.py']
model = dict(
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(mean={{_base_.image_mean}}, std={{_base_.image_std}}),
    contrastive_loss=dict(type='SigLipLoss'))
