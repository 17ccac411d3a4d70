# SC-CLIP on PASCAL Context-60, OpenAI CLIP ViT-B/16.
# Published mIoU and protocol sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/scclip.py', '../../_base_/datasets/zs_pc60.py']
# Background thresholds: SC-CLIP configs/cfg_context60.py.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_context60.txt',
    decode_head=dict(prob_thd=0.15, background_index=0))
