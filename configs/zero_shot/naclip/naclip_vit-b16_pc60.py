# NACLIP on PASCAL Context-60, OpenAI CLIP ViT-B/16.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/naclip.py', '../../_base_/datasets/zs_pc60.py']
# Background thresholds: NACLIP configs/cfg_context60.py.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_context60.txt',
    decode_head=dict(prob_thd=0.1, background_index=0))
