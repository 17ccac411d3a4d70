# Demo baseline of the SigLIP 2 recipe: SigLIP-only pretraining of the tiny towers on the
# procedural demo data (sigmoid loss, learned scale and bias; no decoder, no distillation, no
# EMA teacher). demo_siglip2_tiny.py adds the recipe to exactly this run: same towers, data,
# schedule and seed, and the same pipeline (the sigmoid loss sees the whole image, resized;
# the crops and region tokens are drawn but unused here, so both runs draw the same random
# numbers for a given seed). Study: docs/siglip2.md ("Study").
#   python tools/misc/make_demo_data.py --out data/demo
#   python tools/train.py configs/silc/demo_siglip_tiny.py
_base_ = ['./demo_clip_tiny.py']

model = dict(contrastive_loss=dict(type='SigLipLoss'))

whole_image = [dict(type='Resize', scale=(64, 64))]  # the global crop size
train_pipeline = [
    dict(
        type='mmpretrain.MultiView',
        num_views=[{{_base_.num_global_crops}}, {{_base_.num_local_crops}}, 1],
        transforms=[{{_base_.global_view}}, {{_base_.local_view}}, whole_image]),
    dict(type='TokenizeCaption', tokenizer={{_base_.caption_tokenizer}}),
    dict(type='TokenizeRegions', tokenizer={{_base_.caption_tokenizer}}, max_regions=1),
    dict(
        type='PackSILCInputs',
        num_global_crops={{_base_.num_global_crops}},
        num_contrastive_crops=1),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
