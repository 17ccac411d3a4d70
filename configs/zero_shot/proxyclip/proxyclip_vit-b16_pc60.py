# ProxyCLIP on PASCAL Context-60, OpenAI CLIP ViT-B/16 + DINO ViT-B/8.
# Published mIoU and protocol sources: docs/zero_shot_protocols.md.
_base_ = ['../_base_/proxyclip.py', '../../_base_/datasets/zs_pc60.py']
# ProxyCLIP configs/cfg_context60.py: name_path, Resize 336, prob_thd.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_context60.txt',
    decode_head=dict(prob_thd=0.15, background_index=0))
test_pipeline = {{_base_.proxyclip_test_pipeline_336}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
