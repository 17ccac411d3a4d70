# Demo: the SigLIP 2 recipe (pretrain_siglip2_b16.py) on the tiny towers and the procedural
# demo data, on CPU in minutes: sigmoid loss + LocCa decoder (captions; referring expressions
# and grounded captions on the images with boxes, every second one of the demo data) from
# iteration 0; at 80% of the run (iteration 32 of 40) the EMA teacher starts from the student
# and SILC's local-to-global distillation and masked prediction join in (a log line marks the
# switch). Towers, data, local/global crops and seed as demo_silc_tiny.py, whole-image view and
# schedule as demo_siglip_tiny.py (its SigLIP-only baseline); the values of the recipe and
# their sources: docs/siglip2.md ("Training recipe").
#   python tools/misc/make_demo_data.py --out data/demo
#   python tools/train.py configs/silc/demo_siglip2_tiny.py
_base_ = [
    './demo_siglip_tiny.py', '../_base_/objectives/silc_distill_tiny.py',
    '../_base_/objectives/masked_distill_tiny.py'
]

embed_dim = 64  # demo_tiny.py's joint space
image_width = 64
model = dict(
    type='SigLIP2',
    # SILC's distillation and teacher as demo_silc_tiny.py.
    distill_head=dict(_base_.distill_head, in_channels=embed_dim),
    distill_loss={{_base_.distill_loss}},
    teacher=dict(momentum=0.99, end_momentum=None, temperature=0.04),
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

# The distillation heads start at the switch: no last-layer freezing (it would end before).
custom_hooks = [
    dict(type='DataStatsHook', interval=20),  # as demo_silc_tiny.py's: every second log line
    dict(type='ExtendOptimizerStateHook')
]
