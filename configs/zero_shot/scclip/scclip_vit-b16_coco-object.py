# SC-CLIP on COCO-Object, OpenAI CLIP ViT-B/16.
# Published mIoU and protocol sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/scclip.py', '../../_base_/datasets/zs_coco-object.py']
# Background thresholds: SC-CLIP configs/cfg_coco_object.py.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_coco_object.txt',
    decode_head=dict(logit_scale=55.0, prob_thd=0.35, background_index=0))
