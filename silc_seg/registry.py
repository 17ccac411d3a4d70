"""Registries used by silc-seg.

silc-seg registers every module straight into MMSegmentation's registries, so that
``custom_imports=dict(imports=['silc_seg'])`` makes them available, unprefixed, to any mmseg config
running under ``default_scope='mmseg'``. See ``docs/design.md``. Only the registries that the
package and its tools use are re-exported here.
"""
from mmseg.registry import (DATASETS, HOOKS, METRICS, MODEL_WRAPPERS, MODELS,
                            OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS, RUNNERS,
                            TRANSFORMS)

__all__ = [
    'DATASETS', 'HOOKS', 'METRICS', 'MODEL_WRAPPERS', 'MODELS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'OPTIM_WRAPPERS', 'OPTIMIZERS', 'RUNNERS', 'TRANSFORMS'
]
