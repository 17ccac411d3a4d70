# ProxyCLIP on COCO-Stuff-171, OpenAI CLIP ViT-B/16 + DINO ViT-B/8.
# Published mIoU and protocol sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/proxyclip.py', '../../_base_/datasets/zs_coco-stuff171.py']
# ProxyCLIP configs/cfg_coco_stuff164k.py: name_path, Resize 336.
model = dict(class_names='{{fileDirname}}/../../vocabularies/sclip/cls_coco_stuff.txt')
test_pipeline = {{_base_.proxyclip_test_pipeline_336}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
