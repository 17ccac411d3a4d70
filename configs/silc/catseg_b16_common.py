# CAT-Seg on SILC ViT-B/16 towers: the CAT-Seg model (configs/_base_/models/catseg.py) on the
# towers of configs/_base_/towers/silc_vit-b16.py with CAT-Seg's runtime (catseg_runtime.py),
# shared by the training config (catseg_b16_coco-stuff171.py) and the evaluation configs
# (catseg_b16_{ade150,pc59,ade847,pc459}.py). Other towers: inherit another file of
# configs/_base_/towers/ in place of silc_vit-b16.py (docs/catseg.md, "Another tower").
_base_ = [
    '../_base_/catseg_runtime.py', '../_base_/towers/silc_vit-b16.py', '../_base_/models/catseg.py'
]

model = dict(
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(mean={{_base_.image_mean}}, std={{_base_.image_std}}),
    # COCO-Stuff-171 label values 0..170 in mmseg's class order.
    train_class_names='{{fileDirname}}/../vocabularies/catseg/coco-stuff171.txt',
    # None: the evaluated dataset's classes (ModelDatasetMetaHook).
    class_names=None)
