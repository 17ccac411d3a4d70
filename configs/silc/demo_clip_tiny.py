# Demo baseline: the same tiny towers, data, schedule and seed as demo_silc_tiny.py, trained with
# the image-text contrastive loss only (no distillation head, no EMA teacher).
#   python tools/train.py configs/silc/demo_clip_tiny.py
_base_ = ['./demo_silc_tiny.py']

model = dict(distill_head=None, distill_loss=None)
custom_hooks = [
    dict(type='DataStatsHook', interval={{_base_.default_hooks.logger.interval}}),
]
