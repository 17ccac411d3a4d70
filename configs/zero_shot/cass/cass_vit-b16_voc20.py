# CASS on PASCAL VOC-20, OpenAI CLIP ViT-B/16 + DINO ViT-B/8.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/cass.py', '../../_base_/datasets/zs_voc20.py']
# CASS configs/cfg_voc20.py: name_path, global_semantics_weight, mean_vector_weight, h_threshold.
# clip/model.py _scale_singular_values: not on 'voc20' / 'city_scapes'.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_voc20.txt',
    text_adjustment=dict(cluster_threshold=0.1, mean_vector_weight=0.02, global_weight=0.4),
    dense_forward=dict(rescale_singular_values=False))
