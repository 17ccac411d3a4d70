# Tiny SILC pretraining model on the towers of configs/_base_/towers/silc_vit-tiny.py.
_base_ = ['../towers/silc_vit-tiny.py']
model = dict(
    type='SILC',
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(type='SILCDataPreprocessor', bgr_to_rgb=True),
    contrastive_loss=dict(type='ClipContrastiveLoss'))
