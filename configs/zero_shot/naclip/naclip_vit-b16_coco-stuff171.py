# NACLIP on COCO-Stuff-171, OpenAI CLIP ViT-B/16.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/naclip.py', '../../_base_/datasets/zs_coco-stuff171.py']
model = dict(class_names='{{fileDirname}}/../../vocabularies/sclip/cls_coco_stuff.txt')
# Short side 336 (NACLIP configs/cfg_coco_stuff164k.py at defb7c94; SCLIP uses 448).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
