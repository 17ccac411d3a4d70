# CAT-Seg's runtime on any towers: mmseg's default runtime, CAT-Seg's test resolution (shortest
# edge 640, longest at most 2560; labels at original size), iteration-based logging and
# checkpoints, and the hook that hands the evaluated dataset's classes to the model.
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
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
log_processor = dict(by_epoch=False)
