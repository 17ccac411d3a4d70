# Zero-shot segmentation with SigLIP 2 ViT-B/16 towers (converted with
# tools/model_converters/siglip2silc.py, see configs/_base_/towers/siglip2_vit-b-16.py): the
# settings of zs_common.py (224 x 224 windows with stride 112, 80 ImageNet templates, logit
# scale 40, plain last block) with SigLIP 2's towers, Gemma tokenizer and [-1, 1] normalization.
# Dense patch embeddings of the attention-pooled (MAP) tower: SILCVisionTransformer.
# project_patches. Training-free blocks: zs_siglip2_vit-b-16_<block>_<dataset>.py; what each
# does without a class token: docs/siglip2.md.
_base_ = [
    './zs_runtime.py', '../_base_/models/zero_shot_segmentor.py',
    '../_base_/towers/siglip2_vit-b-16.py'
]
model = dict(
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(mean={{_base_.image_mean}}, std={{_base_.image_std}}))
