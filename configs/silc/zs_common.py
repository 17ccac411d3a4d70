# Zero-shot segmentation with SILC ViT-B/16 towers (the OpenCLIP ViT-B-16 layout): the entry
# point for SILC checkpoints. The per-dataset configs (zs_<dataset>.py) add the dataset and its
# head options.
# One default protocol (SCLIP's evaluation settings, wangf3014/SCLIP configs/cfg_*.py): the image
# resized to a short side of 336 (448 COCO-Stuff, 560 Cityscapes), 224x224 sliding windows with
# stride 112, OpenAI's 80 ImageNet templates, logit scale 40 (VOC-21: 65, PC-60 and COCO-Object:
# 50, with background thresholds), our vocabularies (class_names/*.txt, or the dataset's class
# names), the plain last block, no PAMR, fp32. The published methods' protocols are the presets
# of configs/zero_shot/ (docs/zero_shot_protocols.md).
_base_ = [
    './zs_runtime.py', '../_base_/models/zero_shot_segmentor.py',
    '../_base_/towers/silc_vit-b16.py'
]
model = dict(
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(mean={{_base_.image_mean}}, std={{_base_.image_std}}))
