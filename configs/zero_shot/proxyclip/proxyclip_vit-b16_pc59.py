# ProxyCLIP on PASCAL Context-59, OpenAI CLIP ViT-B/16 + DINO ViT-B/8.
# Published mIoU and protocol sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/proxyclip.py', '../../_base_/datasets/zs_pc59.py']
# ProxyCLIP configs/cfg_context59.py: name_path, Resize 336.
model = dict(class_names='{{fileDirname}}/../../vocabularies/sclip/cls_context59.txt')
test_pipeline = {{_base_.proxyclip_test_pipeline_336}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
