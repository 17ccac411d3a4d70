# ClearCLIP on PASCAL VOC-20, OpenAI CLIP ViT-B/16.
# Published mIoU: 80.9 (paper).
# Protocol and sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/clearclip.py', '../../_base_/datasets/zs_voc20.py']
# ClearCLIP's own class file (configs/cls_voc20.txt): single-name 'person' and 'tvmonitor'.
model = dict(class_names='{{fileDirname}}/../../vocabularies/clearclip/cls_voc20.txt')
test_pipeline = {{_base_.clearclip_test_pipeline}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
