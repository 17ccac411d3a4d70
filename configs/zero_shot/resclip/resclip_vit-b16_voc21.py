# ResCLIP on PASCAL VOC-21, OpenAI CLIP ViT-B/16.
# Published mIoU and protocol sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/resclip.py', '../../_base_/datasets/zs_voc21.py']
# ResCLIP configs/cfg_voc21.py: temp_thd, attn_rcs_weights, attn_sfr_weights, prob_thd,
# slide_crop=0 (whole image).
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_voc21.txt',
    dense_forward=dict(temp_thd=0.5, rcs_weights=(2.0, 0.3), sfr_weights=(2.2, 0.7)),
    decode_head=dict(prob_thd=0.1, background_index=0),
    test_cfg=dict(mode='whole'))
