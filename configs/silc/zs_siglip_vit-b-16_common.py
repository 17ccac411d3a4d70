# Zero-shot segmentation with SigLIP ViT-B/16 towers (converted with
# tools/model_converters/openclip2silc.py or bigvision2silc.py, see
# configs/_base_/towers/siglip_vit-b-16.py): the settings of zs_common.py with SigLIP's towers
# and [-1, 1] normalization. Dense patch embeddings of the attention-pooled (MAP) tower:
# SILCVisionTransformer.project_patches.
_base_ = [
    './zs_runtime.py', '../_base_/models/zero_shot_segmentor.py',
    '../_base_/towers/siglip_vit-b-16.py'
]
model = dict(
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(mean={{_base_.image_mean}}, std={{_base_.image_std}}))
