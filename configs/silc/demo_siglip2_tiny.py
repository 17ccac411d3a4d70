# Demo: the SigLIP 2 recipe (pretrain_siglip2_b16.py) on the tiny towers and the procedural
# demo data, on CPU in minutes: sigmoid loss + LocCa decoder (captions; referring expressions
# and grounded captions on the images with boxes, every second one of the demo data) from
# iteration 0; at 80% of the run (iteration 32 of 40) the EMA teacher starts from the student
# and SILC's local-to-global distillation and masked prediction join in (a log line marks the
# switch). Towers, data, local/global crops and seed as demo_silc_tiny.py, a shorter schedule;
# the values of the recipe and their sources: docs/siglip2.md ("Training recipe").
#   python tools/misc/make_demo_data.py --out data/demo
#   python tools/train.py configs/silc/demo_siglip2_tiny.py
_base_ = ['./demo_silc_tiny.py', '../_base_/objectives/masked_distill_tiny.py']

embed_dim = 64  # demo_tiny.py's joint space
image_width = 64
model = dict(
    type='SigLIP2',
    contrastive_loss=dict(type='SigLipLoss'),
    caption_decoder=dict(
        type='LocCaDecoder',
        vocab_size=49408,  # the CLIP BPE of the demo captions
        in_channels=image_width,
        embed_dims=64,
        depth=2,  # ours: half the tiny text tower's 3 blocks, rounded down (B/16: 6 of 12)
        num_heads=4,
        max_length=40,  # task token + 32 caption tokens (+ a box for the region tasks)
        num_bins=64,  # ours: one bin per 1.5 px of the 96 px demo images
        parallel_prob=0.5),  # as pretrain_siglip2_b16.py
    decoder_weight=1.0,
    masked_head=dict(_base_.masked_head, in_channels=embed_dim),
    masked_distill_loss={{_base_.masked_distill_loss}},
    image_decoder=None,  # per-patch features through the tower's own projection
    image_mask_ratio=0.5,
    image_mask_strategy='random',
    # The weights of pretrain_siglip2_b16.py (B-size factor 0.25).
    distill_weight=0.25,
    masked_distill_weight=0.0625,
    switch_ratio=0.8)

# The sigmoid loss and the decoder see the whole image (resized, not cropped or flipped, so the
# boxes stay valid); the distillation sees the crops of demo_pretrain.py.
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

# The distillation heads start at the switch: no last-layer freezing (it would end before).
custom_hooks = [{{_base_.data_stats_hook}}, {{_base_.extend_optimizer_state_hook}}]

# A short schedule, so that the demo runs in minutes on 2 CPU cores (docs/siglip2.md, "Demo
# time"); the same in demo_siglip_tiny.py, its SigLIP-only baseline. Otherwise the schedule of
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
