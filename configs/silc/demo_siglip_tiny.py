# Demo baseline of the SigLIP 2 recipe: SigLIP-only pretraining of the tiny towers on the
# procedural demo data (sigmoid loss, learned scale and bias; no decoder, no distillation, no
# EMA teacher). demo_siglip2_tiny.py adds the recipe to exactly this run: same towers, data,
# schedule (its short one) and seed, and the same pipeline (the sigmoid loss sees the whole
# image, resized; the crops and region tokens are drawn but unused here, so both runs draw the
# same random numbers for a given seed). Study: docs/siglip2.md ("Study").
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

# A short schedule, so that the demo runs in minutes on 2 CPU cores (docs/siglip2.md, "Demo
# time"); as demo_siglip2_tiny.py, which this run is the baseline of. Otherwise the schedule of
# demo_pretrain_cpu.py (AdamW 1e-3, 10% linear warm-up, cosine to 1e-5). Log every 10
# iterations, so that the log has lines of both stages.
max_iters = 40
warmup_iters = 4
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=warmup_iters),
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters - warmup_iters,
        eta_min=1e-5,
        by_epoch=False,
        begin=warmup_iters,
        end=max_iters),
]
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=max_iters))
