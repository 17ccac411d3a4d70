# CASS on PASCAL Context-59, OpenAI CLIP ViT-B/16 + DINO ViT-B/8.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/cass.py', '../../_base_/datasets/zs_pc59.py']
# CASS configs/cfg_context59.py: name_path, global_semantics_weight, mean_vector_weight,
# h_threshold.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_context59.txt',
    text_adjustment=dict(cluster_threshold=0.09, mean_vector_weight=0.04, global_weight=0.25))
