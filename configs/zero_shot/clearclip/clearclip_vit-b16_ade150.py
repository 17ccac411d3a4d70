# ClearCLIP on ADE20K-150, OpenAI CLIP ViT-B/16.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/clearclip.py', '../../_base_/datasets/zs_ade150.py']
model = dict(class_names='{{fileDirname}}/../../vocabularies/sclip/cls_ade20k.txt')
test_pipeline = {{_base_.clearclip_test_pipeline}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
