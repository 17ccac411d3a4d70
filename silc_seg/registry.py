"""Registries used by silc-seg.

silc-seg registers every module straight into MMSegmentation's registries, so that
``custom_imports=dict(imports=['silc_seg'])`` makes them available, unprefixed, to any mmseg config
running under ``default_scope='mmseg'``. See ``docs/design.md``.
"""
from mmseg.registry import (DATA_SAMPLERS, DATASETS, HOOKS, LOG_PROCESSORS,
                            LOOPS, METRICS, MODEL_WRAPPERS, MODELS,
                            OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS,
                            OPTIMIZERS, PARAM_SCHEDULERS, RUNNERS, TRANSFORMS,
                            VISBACKENDS, VISUALIZERS)

__all__ = [
    'DATA_SAMPLERS', 'DATASETS', 'HOOKS', 'LOG_PROCESSORS', 'LOOPS', 'METRICS',
    'MODEL_WRAPPERS', 'MODELS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'OPTIM_WRAPPERS', 'OPTIMIZERS',
    'PARAM_SCHEDULERS', 'RUNNERS', 'TRANSFORMS', 'VISBACKENDS', 'VISUALIZERS'
]
