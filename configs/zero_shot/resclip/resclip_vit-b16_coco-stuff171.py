# ResCLIP on COCO-Stuff-171, OpenAI CLIP ViT-B/16.
# Published mIoU and protocol sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/resclip.py', '../../_base_/datasets/zs_coco-stuff171.py']
# ResCLIP configs/cfg_coco_stuff164k.py: temp_thd, attn_rcs_weights, attn_sfr_weights.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_coco_stuff.txt',
    dense_forward=dict(temp_thd=0.11, rcs_weights=(2.0, 0.4), sfr_weights=(1.8, 0.7)))
# ResCLIP configs/cfg_coco_stuff164k.py: short side 336 (SCLIP: 448).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
