# ResCLIP on PASCAL VOC-20, OpenAI CLIP ViT-B/16.
# Published mIoU and protocol sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/resclip.py', '../../_base_/datasets/zs_voc20.py']
# ResCLIP configs/cfg_voc20.py: temp_thd, attn_rcs_weights, attn_sfr_weights,
# slide_crop=0 (whole image).
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_voc20.txt',
    dense_forward=dict(temp_thd=0.1, rcs_weights=(2.0, 0.6), sfr_weights=(2.1, 0.6)),
    test_cfg=dict(mode='whole'))
