# SILC ViT-B/16 towers (arXiv 2310.13355): ViT-B/16 image tower with class-token pooling and a
# 512-d projection, CLIP-style causal text tower with CLIP's BPE tokenizer. The layout is OpenCLIP's
# ViT-B-16 (../towers/openclip_vit-b-16.py), so converted OpenCLIP weights can initialize it.
# The distillation head (J=512 -> K prototypes) and losses are set by the pretraining configs.
_base_ = ['../towers/openclip_vit-b-16.py']
model = dict(
    type='SILC',
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(
        type='SILCDataPreprocessor',
        mean={{_base_.clip_mean}},
        std={{_base_.clip_std}},
        bgr_to_rgb=True),
    contrastive_loss=dict(type='ClipContrastiveLoss'))
