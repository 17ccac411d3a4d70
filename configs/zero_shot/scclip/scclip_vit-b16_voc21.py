# SC-CLIP on PASCAL VOC-21, OpenAI CLIP ViT-B/16.
# Published mIoU and protocol sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/scclip.py', '../../_base_/datasets/zs_voc21.py']
# Background thresholds: SC-CLIP configs/cfg_voc21.py.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_voc21.txt',
    decode_head=dict(logit_scale=50.0, prob_thd=0.15, area_thd=0.1, background_index=0))
