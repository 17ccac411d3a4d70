# ProxyCLIP on ADE20K-150, OpenAI CLIP ViT-B/16 + DINO ViT-B/8.
# Published mIoU and protocol sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/proxyclip.py', '../../_base_/datasets/zs_ade150.py']
# ProxyCLIP configs/cfg_ade20k.py: name_path, Resize 448.
model = dict(class_names='{{fileDirname}}/../../vocabularies/sclip/cls_ade20k.txt')
test_pipeline = {{_base_.proxyclip_test_pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
