# ClearCLIP on PASCAL Context-60, OpenAI CLIP ViT-B/16.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/clearclip.py', '../../_base_/datasets/zs_pc60.py']
# Background thresholds: ClearCLIP configs/cfg_context60.py.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_context60.txt',
    decode_head=dict(prob_thd=0.15, background_index=0))
test_pipeline = {{_base_.clearclip_test_pipeline}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
