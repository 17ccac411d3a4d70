from mmengine.hooks import Hook

from silc_seg.registry import HOOKS


@HOOKS.register_module()
class EMATeacherHook(Hook):
    """Removed: the model updates its EMA teacher in its own ``train_step``.

    Kept registered so that an old config that lists it fails with a message naming the
    replacement, ``model.teacher=dict(momentum=..., end_momentum=..., base_batch_size=...)``.
    """

    def __init__(self, *args, **kwargs) -> None:
        raise ValueError(
            'EMATeacherHook is gone: the model updates its EMA teacher in train_step. Remove '
            'the hook from custom_hooks and move its arguments to the model config, '
            f'model.teacher=dict(momentum=..., end_momentum=..., base_batch_size=...) (got '
            f'{kwargs}; total_iters is now momentum_iters); under DDP set '
            "model_wrapper_cfg=dict(type='mmseg.TrainStepDDP')")
