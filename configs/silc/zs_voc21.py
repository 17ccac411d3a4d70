_base_ = ['./zs_common.py', '../_base_/datasets/zs_voc21.py']
# Background is class 0: pixels whose best probability is below prob_thd become background and
# classes covering < area_thd of the foreground are dropped (SCLIP's VOC-21 settings).
model = dict(
    class_names='{{fileDirname}}/../vocabularies/silc/voc21.txt',
    decode_head=dict(logit_scale=65.0, prob_thd=0.1, area_thd=0.1, background_index=0))
