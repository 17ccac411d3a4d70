# CASS on Cityscapes, OpenAI CLIP ViT-B/16 + DINO ViT-B/8.
# Protocol, sources and published mIoU: docs/zero_shot_protocols.md.
_base_ = ['../_base_/cass.py', '../../_base_/datasets/zs_cityscapes.py']
# CASS configs/cfg_city_scapes.py: name_path, global_semantics_weight, mean_vector_weight,
# h_threshold.
# clip/model.py _scale_singular_values: not on 'voc20' / 'city_scapes'.
# cass_segmentor.py forward_slide: the window's own class token on 'city_scapes'.
model = dict(
    class_names='{{fileDirname}}/../../vocabularies/sclip/cls_city_scapes.txt',
    text_adjustment=dict(cluster_threshold=0.14, mean_vector_weight=0.03, global_weight=0.1),
    dense_forward=dict(rescale_singular_values=False),
    global_view='window')
