# MaskCLIP (Zhou et al.) on PASCAL VOC-21, OpenAI CLIP ViT-B/16.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/maskclip.py', '../../_base_/datasets/zs_voc21.py']
# Background thresholds: SCLIP configs/cfg_voc21.py.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_voc21.txt',
    decode_head=dict(logit_scale=65.0, prob_thd=0.1, area_thd=0.1, background_index=0))
