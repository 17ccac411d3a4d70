# ClearCLIP on PASCAL Context-59, OpenAI CLIP ViT-B/16.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/clearclip.py', '../../_base_/datasets/zs_pc59.py']
model = dict(class_names='{{fileDirname}}/../../vocabularies/sclip/cls_context59.txt')
test_pipeline = {{_base_.clearclip_test_pipeline}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
