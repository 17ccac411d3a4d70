# SILC ViT-B/16 pretraining model (arXiv 2310.13355) on the towers of ../towers/silc_vit-b16.py.
# The distillation head (J=512 -> K prototypes) and losses are set by the pretraining configs.
_base_ = ['../towers/silc_vit-b16.py']
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
    contrastive_loss=dict(type='ClipContrastiveLoss'))
