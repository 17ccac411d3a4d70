# NACLIP on ADE20K-150, OpenAI CLIP ViT-B/16.
# Published mIoU: 19.05 with PAMR (repo README); 17.4 without (paper).
# Protocol and sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/naclip.py', '../../_base_/datasets/zs_ade150.py']
model = dict(
    class_names='{{fileDirname}}/../vocabularies/sclip/cls_ade20k.txt')
