# CAT-Seg's optimization (cvlab-kaist/CAT-Seg configs/config.yaml, configs/vitb_384.yaml): AdamW
# lr 2e-4, weight decay 1e-4, cosine decay to 0 without warm-up over 80k iterations, the towers
# at 0.01 x lr (CLIP_MULTIPLIER), full-model gradient L2 norm clipped at 0.01 (CLIP_GRADIENTS).
max_iters = 80000
optim_wrapper = dict(
    type='OptimWrapper',
    # One log line for the frozen parameters (EMA teacher / frozen tower parts), not one each.
    constructor='FrozenParamsOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    # Norm layers (GroupNorm, LayerNorm) without weight decay: detectron2's WEIGHT_DECAY_NORM
    # (0.0), which CAT-Seg's build_optimizer applies (train_net.py).
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        custom_keys={
            'image_encoder': dict(lr_mult=0.01),
            'text_encoder': dict(lr_mult=0.01)
        }))
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters,
        eta_min=0.0,
        by_epoch=False,
        begin=0,
        end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=5000)
val_cfg = dict(type='ValLoop')
