# CAT-Seg on SigLIP 2 ViT-B/16 towers at 384 px (configs/_base_/towers/siglip2_vit-b-16-384.py:
# open_clip ViT-B-16-SigLIP2-384, big_vision siglip2_b16_384.npz), whose 24 x 24 positional
# table is the grid of CAT-Seg's 384 x 384 crops: the settings of catseg_b16_common.py with
# these towers. The MAP-pooled tower has no class token, so CAT-Seg's dense last block (the class
# token's input as every token's residual) does not exist: the cost volume is built from the
# ordinary last block (dense_variant='plain'; docs/siglip2.md, Dense use).
_base_ = [
    '../_base_/catseg_runtime.py', '../_base_/towers/siglip2_vit-b-16-384.py',
    '../_base_/models/catseg.py'
]

model = dict(
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(mean={{_base_.image_mean}}, std={{_base_.image_std}}),
    dense_variant='plain',
    train_class_names='{{fileDirname}}/../vocabularies/catseg/coco-stuff171.txt',
    class_names=None)
