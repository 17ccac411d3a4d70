# NACLIP on PASCAL VOC-20, OpenAI CLIP ViT-B/16.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/naclip.py', '../../_base_/datasets/zs_voc20.py']
# Whole-image inference: NACLIP configs/cfg_voc20.py (slide_crop=0).
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_voc20.txt',
    test_cfg=dict(mode='whole'))
