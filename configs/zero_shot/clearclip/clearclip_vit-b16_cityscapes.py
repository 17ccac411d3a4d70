# ClearCLIP on Cityscapes, OpenAI CLIP ViT-B/16.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/clearclip.py', '../../_base_/datasets/zs_cityscapes.py']
# 224x224 windows with stride 224: ClearCLIP configs/cfg_city_scapes.py.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_city_scapes.txt',
    test_cfg=dict(crop_size=(224, 224), stride=(224, 224)))
test_pipeline = {{_base_.clearclip_test_pipeline}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
