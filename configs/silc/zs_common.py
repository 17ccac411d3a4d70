# Zero-shot segmentation with SILC ViT-B/16 towers (the OpenCLIP ViT-B-16 layout), the entry point
# for SILC checkpoints; zs_<dataset>.py add the dataset and its head options. Default protocol
# (SCLIP's evaluation settings): the dataset base's short side, 224 px windows with stride 112,
# OpenAI's 80 ImageNet templates, logit scale 40, our vocabularies (configs/vocabularies/silc/ or
# the dataset's class names), the plain last block, no PAMR, fp32. The published methods'
# protocols: configs/zero_shot/ (docs/zero_shot_protocols.md).
_base_ = [
    './zs_runtime.py', '../_base_/models/zero_shot_segmentor.py',
    '../_base_/towers/silc_vit-b16.py'
]
model = dict(
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(mean={{_base_.image_mean}}, std={{_base_.image_std}}))
