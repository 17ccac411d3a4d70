# CAT-Seg's runtime on any towers: mmseg's default runtime, CAT-Seg's test resolution (shortest
# edge 640, longest at most 2560; labels at original size), iteration-based logging and
# checkpoints (crash-safe, and saved on a preemption signal: docs/reliability.md), and the hook
# that hands the evaluated dataset's classes to the model.
_base_ = ['mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['silc_seg'], allow_failed_imports=False)

catseg_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeShortestEdge', scale=640, max_size=2560),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
test_cfg = dict(type='TestLoop')
custom_hooks = [dict(type='ModelDatasetMetaHook')]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Atomic writes, safe rotation, resume from the newest complete file (silc_seg/engine).
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=False, interval=5000, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
    # SIGTERM / SIGUSR1: save after the current step, exit with code 75 (docs/reliability.md).
    preemption=dict(type='PreemptionHook'))
log_processor = dict(by_epoch=False)
