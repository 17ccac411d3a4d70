# ResCLIP on PASCAL Context-59, OpenAI CLIP ViT-B/16.
# Published mIoU and protocol sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/resclip.py', '../../_base_/datasets/zs_pc59.py']
# ResCLIP configs/cfg_context59.py: temp_thd, attn_rcs_weights, attn_sfr_weights.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_context59.txt',
    dense_forward=dict(temp_thd=0.25, rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7)))
