# NACLIP on COCO-Object, OpenAI CLIP ViT-B/16.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/naclip.py', '../../_base_/datasets/zs_coco-object.py']
# Background thresholds: NACLIP configs/cfg_coco_object.py.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_coco_object.txt',
    decode_head=dict(prob_thd=0.1, background_index=0))
