# ResCLIP on Cityscapes, OpenAI CLIP ViT-B/16.
# Published mIoU and protocol sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/resclip.py', '../../_base_/datasets/zs_cityscapes.py']
# ResCLIP configs/cfg_city_scapes.py: temp_thd, attn_rcs_weights, attn_sfr_weights.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_city_scapes.txt',
    dense_forward=dict(temp_thd=0.1, rcs_weights=(2.0, 0.2), sfr_weights=(2.1, 0.6)))
