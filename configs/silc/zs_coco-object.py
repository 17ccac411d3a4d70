_base_ = ['./zs_common.py', '../_base_/datasets/zs_coco-object.py']
# Background (all stuff) is a class here: pixels whose best class probability is below prob_thd
# become background; its prompt lists typical stuff (class_names/coco-object.txt).
model = dict(
    class_names='{{fileDirname}}/class_names/coco-object.txt',
    decode_head=dict(logit_scale=50.0, prob_thd=0.1, background_index=0))
