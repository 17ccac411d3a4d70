# ProxyCLIP on Cityscapes, OpenAI CLIP ViT-B/16 + DINO ViT-B/8.
# Published mIoU and protocol sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/proxyclip.py', '../../_base_/datasets/zs_cityscapes.py']
# ProxyCLIP configs/cfg_city_scapes.py: name_path, Resize 448, slide_crop=224, slide_stride=112.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_city_scapes.txt',
    test_cfg=dict(crop_size=(224, 224), stride=(112, 112)))
test_pipeline = {{_base_.proxyclip_test_pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
