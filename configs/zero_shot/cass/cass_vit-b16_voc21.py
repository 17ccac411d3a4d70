# CASS on PASCAL VOC-21, OpenAI CLIP ViT-B/16 + DINO ViT-B/8.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/cass.py', '../../_base_/datasets/zs_voc21.py']
# CASS configs/cfg_voc21.py: name_path, global_semantics_weight, mean_vector_weight, h_threshold,
# prob_thd, slide_crop=0 (whole image).
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_voc21.txt',
    text_adjustment=dict(cluster_threshold=0.1, mean_vector_weight=0.03, global_weight=0.1),
    decode_head=dict(prob_thd=0.1, background_index=0),
    test_cfg=dict(mode='whole'))
