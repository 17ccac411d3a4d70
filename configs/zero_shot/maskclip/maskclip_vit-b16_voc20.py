# MaskCLIP (Zhou et al.) on PASCAL VOC-20, OpenAI CLIP ViT-B/16.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/maskclip.py', '../../_base_/datasets/zs_voc20.py']
model = dict(class_names='{{fileDirname}}/../../vocabularies/sclip/cls_voc20.txt')
