# Masked self-distillation ViT-B/16: MaskCLIP of Dong et al. (CVPR 2023, arXiv 2208.12262) as
# far as we can read it, NOT the training-free "MaskCLIP" of Zhou et al. (ECCV 2022) that the
# zero-shot dense variants implement. Contrastive image-text loss + masked self-distillation
# from an EMA teacher + masked language modelling, without SILC's local-to-global distillation.
# The masked branch and the sources of its values are in pretrain_silc-maskdistill_b16.py;
# data, towers and optimisation are pretrain_b16.py's (ours: the paper's data, YFCC-15M and
# others, and schedule are not what we reproduce; the objective is what this config compares).
_base_ = ['./pretrain_silc-maskdistill_b16.py']

# Fixed momentum (ours; the paper's "mean teacher" momentum is not in our material); no teacher
# temperature: that is SILC's distillation's (the masked loss keeps its own).
model = dict(
    distill_head=None,
    distill_loss=None,
    teacher=dict(_delete_=True, momentum=0.996),
    # One plain crop, no colour augmentation (below): none on the device either.
    data_preprocessor=dict(batch_augments=None))

# One view per image: the contrastive loss and both masked branches see the same 224-px crop,
# and the teacher sees it unmasked. Random resized crop at scale (0.9, 1.0) and no colour
# augmentation: OpenCLIP's training transform (mlfoundations/open_clip
# src/open_clip/transform.py, AugmentationCfg.scale); the paper's own augmentation is not in
# the material we have.
num_global_crops = 1
train_pipeline = [
    dict(
        type='mmpretrain.MultiView',
        num_views=[1],
        transforms=[[
            dict(
                type='mmpretrain.RandomResizedCrop',
                scale={{_base_.global_crop_size}},
                crop_ratio_range=(0.9, 1.0),
                interpolation='bicubic',
                backend='pillow'),
        ]]),
    dict(type='TokenizeCaption', tokenizer={{_base_.caption_tokenizer}}),
    dict(type='PackSILCInputs', num_global_crops=num_global_crops, require_local_crops=False),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

custom_hooks = [
    dict(type='DataStatsHook', interval={{_base_.default_hooks.logger.interval}}),
    dict(type='ExtendOptimizerStateHook'),
]
