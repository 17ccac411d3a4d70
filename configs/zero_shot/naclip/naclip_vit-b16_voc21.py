# NACLIP on PASCAL VOC-21, OpenAI CLIP ViT-B/16.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/naclip.py', '../../_base_/datasets/zs_voc21.py']
# Background thresholds: NACLIP configs/cfg_voc21.py.
# Whole-image inference: NACLIP configs/cfg_voc21.py (slide_crop=0).
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_voc21.txt',
    decode_head=dict(prob_thd=0.1, background_index=0),
    test_cfg=dict(mode='whole'))
