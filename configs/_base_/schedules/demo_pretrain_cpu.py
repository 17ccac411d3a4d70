# Demo pretraining schedule: a few hundred iterations of AdamW on CPU (fp32: no AMP on CPU).
max_iters = 200
warmup_iters = 20
base_lr = 1e-3
optim_wrapper = dict(
    # OptimWrapper that raises on a non-finite loss (on any rank); skip_nonfinite_steps=True
    # skips such steps instead (silc_seg/engine/optimizers).
    type='NonFiniteGuardOptimWrapper',
    # One log line for the frozen parameters (EMA teacher / frozen tower parts), not one each.
    constructor='FrozenParamsOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'logit_scale': dict(decay_mult=0.0),
            'logit_bias': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=warmup_iters),
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters - warmup_iters,
        eta_min=base_lr * 1e-2,
        by_epoch=False,
        begin=warmup_iters,
        end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Atomic writes, safe rotation, resume from the newest complete file (silc_seg/engine).
    checkpoint=dict(
        type='SafeCheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # SIGTERM / SIGUSR1: save after the current step, exit with code 75 (docs/reliability.md).
    preemption=dict(type='PreemptionHook'),
    # Before iteration 1: validation metrics follow what the data has (retrieval only when the
    # manifest has no "labels"); mixed or out-of-range labels stop the run.
    fit_evaluators=dict(type='FitEvaluatorsHook'))
# Under DDP, the model's own train_step runs (it updates an EMA teacher after the optimizer
# step). MMEngine looks model wrappers up in its root registry: hence the "mmseg." scope.
model_wrapper_cfg = dict(type='mmseg.TrainStepDDP')
