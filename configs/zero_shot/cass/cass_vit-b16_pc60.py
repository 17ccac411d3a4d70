# CASS on PASCAL Context-60, OpenAI CLIP ViT-B/16 + DINO ViT-B/8.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/cass.py', '../../_base_/datasets/zs_pc60.py']
# CASS configs/cfg_context60.py: name_path, global_semantics_weight, mean_vector_weight,
# h_threshold, prob_thd.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_context60.txt',
    text_adjustment=dict(cluster_threshold=0.09, mean_vector_weight=0.04, global_weight=0.25),
    decode_head=dict(prob_thd=0.1, background_index=0))
