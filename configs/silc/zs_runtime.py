# Runtime of zero-shot segmentation evaluation (tools/test.py): test loop, hooks, visualizer.
_base_ = ['mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['silc_seg'], allow_failed_imports=False)

# Hands the evaluated dataset's class names to the model (its text classifier).
custom_hooks = [dict(type='ModelDatasetMetaHook')]
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=-1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # tools/test.py --show-dir turns drawing on.
    visualization=dict(type='SegVisualizationHook', interval=1))
