# MaskCLIP (Zhou et al.) on PASCAL Context-59, OpenAI CLIP ViT-B/16.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/maskclip.py', '../../_base_/datasets/zs_pc59.py']
model = dict(class_names='{{fileDirname}}/../../vocabularies/sclip/cls_context59.txt')
