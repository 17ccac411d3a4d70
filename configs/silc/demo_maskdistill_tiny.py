# Demo: masked self-distillation (MaskCLIP of Dong et al., CVPR 2023; not Zhou et al.'s
# training-free MaskCLIP) without SILC's local-to-global distillation, on the same towers, data,
# crops, batch, schedule and seed as demo_silc_tiny.py / demo_clip_tiny.py (the study's
# `maskdistill` objective): the contrastive loss on both global crops, masked self-distillation
# of both, masked language modelling. The local crops are produced but unused, as in
# demo_clip_tiny.py.
#   python tools/train.py configs/silc/demo_maskdistill_tiny.py
_base_ = ['./demo_silc-maskdistill_tiny.py']

# The teacher (image encoder + tokenizer head): cosine momentum 0.99 -> 0.999 over the run.
model = dict(
    distill_head=None,
    distill_loss=None,
    teacher=dict(_delete_=True, momentum=0.99, end_momentum=0.999))
custom_hooks = [
    dict(type='DataStatsHook', interval={{_base_.default_hooks.logger.interval}}),
    dict(type='ExtendOptimizerStateHook'),
]
