# ResCLIP on ADE20K-150, OpenAI CLIP ViT-B/16.
# Published mIoU and protocol sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/resclip.py', '../../_base_/datasets/zs_ade150.py']
# ResCLIP configs/cfg_ade20k.py: temp_thd, attn_rcs_weights, attn_sfr_weights.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_ade20k.txt',
    dense_forward=dict(temp_thd=0.25, rcs_weights=(2.0, 0.3), sfr_weights=(2.1, 0.7)))
