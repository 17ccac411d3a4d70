# SC-CLIP on COCO-Stuff-171, OpenAI CLIP ViT-B/16.
# Published mIoU and protocol sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/scclip.py', '../../_base_/datasets/zs_coco-stuff171.py']
model = dict(class_names='{{fileDirname}}/../../vocabularies/sclip/cls_coco_stuff.txt')
# SC-CLIP configs/cfg_coco_stuff164k.py: short side 336 (SCLIP: 448).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
