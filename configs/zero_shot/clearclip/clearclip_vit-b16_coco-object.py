# ClearCLIP on COCO-Object, OpenAI CLIP ViT-B/16.
# Published mIoU: 33.0 (paper).
# Protocol and sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/clearclip.py', '../../_base_/datasets/zs_coco-object.py']
# Background thresholds: ClearCLIP configs/cfg_coco_object.py.
model = dict(
    # ClearCLIP's own class file (configs/cls_coco_object.txt): 'background' and 'person' alone.
    class_names='{{fileDirname}}/../../vocabularies/clearclip/cls_coco_object.txt',
    decode_head=dict(prob_thd=0.4, background_index=0))
test_pipeline = {{_base_.clearclip_test_pipeline}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
