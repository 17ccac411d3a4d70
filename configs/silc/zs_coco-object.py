_base_ = ['./zs_common.py', '../_base_/datasets/zs_coco-object.py']
# Background (all stuff) is class 0: pixels whose best probability is below prob_thd become
# background.
model = dict(
    class_names='{{fileDirname}}/../vocabularies/silc/coco-object.txt',
    decode_head=dict(logit_scale=50.0, prob_thd=0.1, background_index=0))
