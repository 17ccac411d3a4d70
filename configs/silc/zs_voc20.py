_base_ = ['./zs_common.py', '../_base_/datasets/zs_voc20.py']
# Readable names for VOC's compound class names, with a few synonyms.
model = dict(class_names='{{fileDirname}}/../vocabularies/silc/voc20.txt')
