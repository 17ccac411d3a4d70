# ProxyCLIP on PASCAL VOC-20, OpenAI CLIP ViT-B/16 + DINO ViT-B/8.
# Published mIoU and protocol sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/proxyclip.py', '../../_base_/datasets/zs_voc20.py']
# ProxyCLIP configs/cfg_voc20.py: name_path, Resize 336.
model = dict(class_names='{{fileDirname}}/../../vocabularies/clearclip/cls_voc20.txt')
test_pipeline = {{_base_.proxyclip_test_pipeline_336}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
