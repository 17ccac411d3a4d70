# Image-text pretraining schedule: AdamW, linear warm-up then cosine decay, bf16 autocast.
# Iteration-based (web-scale streams have no natural epoch). OpenCLIP ViT-B/16 optimizer settings
# (lr 5e-4 at a global batch of 4096, betas (0.9, 0.98), eps 1e-6, weight decay 0.2); gains,
# biases, the learnable logit scale / bias, position embeddings and class token are not decayed.
max_iters = 250000
warmup_iters = 10000
base_lr = 5e-4
optim_wrapper = dict(
    # AmpOptimWrapper that raises on a non-finite loss (on any rank); skip_nonfinite_steps=True
    # skips such steps instead (silc_seg/engine/optimizers).
    type='NonFiniteGuardAmpOptimWrapper',
    # One log line for the frozen parameters (EMA teacher / frozen tower parts), not one each.
    constructor='FrozenParamsOptimWrapperConstructor',
    # bf16 has fp32's range: no loss scaling needed.
    dtype='bfloat16',
    # fused=True: one kernel for the whole AdamW update (CUDA and CPU), same result up to
    # rounding; see docs/benchmarks.md for its measured effect. Off by default until measured
    # on a GPU. (torch.compile of the transformer blocks: add dict(type='CompileBlocksHook')
    # to custom_hooks; activation checkpointing: with_cp=True in both towers.)
    optimizer=dict(
        type='AdamW', lr=base_lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2, fused=False),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'logit_scale': dict(decay_mult=0.0),
            'logit_bias': dict(decay_mult=0.0),
            'positional_embedding': dict(decay_mult=0.0),
            'pos_embed': dict(decay_mult=0.0),
            'class_embedding': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters - warmup_iters,
        eta_min=0.0,
        by_epoch=False,
        begin=warmup_iters,
        end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Atomic writes, safe rotation, resume from the newest complete file (silc_seg/engine).
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=False, interval=5000, max_keep_ckpts=5),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # SIGTERM / SIGUSR1: save after the current step, exit with code 75 (docs/reliability.md).
    preemption=dict(type='PreemptionHook'),
    # Before iteration 1: validation metrics follow what the data has (retrieval only when the
    # manifest has no "labels"); mixed or out-of-range labels stop the run.
    fit_evaluators=dict(type='FitEvaluatorsHook'))
# The lr above is for a global batch of 4096 (e.g. 32 GPUs x 128); `--auto-scale-lr`-style
# linear scaling to other batch sizes: set enable=True.
auto_scale_lr = dict(enable=False, base_batch_size=4096)
# Under DDP, the model's own train_step runs (it updates an EMA teacher after the optimizer
# step). MMEngine looks model wrappers up in its root registry: hence the "mmseg." scope.
model_wrapper_cfg = dict(type='mmseg.TrainStepDDP')
