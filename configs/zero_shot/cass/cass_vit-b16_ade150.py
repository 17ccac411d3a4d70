# CASS on ADE20K-150, OpenAI CLIP ViT-B/16 + DINO ViT-B/8.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/cass.py', '../../_base_/datasets/zs_ade150.py']
# CASS configs/cfg_ade20k.py: name_path, global_semantics_weight, mean_vector_weight, h_threshold.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_ade20k.txt',
    text_adjustment=dict(cluster_threshold=0.06, mean_vector_weight=0.05, global_weight=0.3))
