# SCLIP on PASCAL Context-59, OpenAI CLIP ViT-B/16.
# Published mIoU: 34.46 (repo README; paper 34.2).
# Protocol and sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/sclip.py', '../../_base_/datasets/zs_pc59.py']
model = dict(
    class_names='{{fileDirname}}/../vocabularies/sclip/cls_context59.txt')
