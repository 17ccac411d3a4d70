# CASS on COCO-Stuff-171, OpenAI CLIP ViT-B/16 + DINO ViT-B/8.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/cass.py', '../../_base_/datasets/zs_coco-stuff171.py']
# CASS configs/cfg_coco_stuff164k.py: name_path, global_semantics_weight, mean_vector_weight,
# h_threshold.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_coco_stuff.txt',
    text_adjustment=dict(cluster_threshold=0.02, mean_vector_weight=0.02, global_weight=0.2))
# Short side 336 (CASS configs/cfg_coco_stuff164k.py; the dataset base has 448).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
