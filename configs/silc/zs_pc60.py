_base_ = ['./zs_common.py', '../_base_/datasets/zs_pc60.py']
# Background is a class here: pixels whose best class probability is below prob_thd become
# background, whose prompt lists typical background stuff (class_names/pc60.txt).
model = dict(
    class_names='{{fileDirname}}/class_names/pc60.txt',
    decode_head=dict(logit_scale=50.0, prob_thd=0.1, background_index=0))
