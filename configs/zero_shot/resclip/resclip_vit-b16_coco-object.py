# ResCLIP on COCO-Object, OpenAI CLIP ViT-B/16.
# Published mIoU and protocol sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/resclip.py', '../../_base_/datasets/zs_coco-object.py']
# ResCLIP configs/cfg_coco_object.py: temp_thd, attn_rcs_weights, attn_sfr_weights, prob_thd.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_coco_object.txt',
    dense_forward=dict(temp_thd=0.11, rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7)),
    decode_head=dict(prob_thd=0.1, background_index=0))
