from mmengine.hooks import Hook

from silc_seg.registry import HOOKS


@HOOKS.register_module()
class TeacherTempWarmupHook(Hook):
    """Removed: the model passes its scheduled teacher temperature to the distillation loss.

    Kept registered so that an old config that lists it fails with a message naming the
    replacement, ``model.teacher=dict(temperature=..., warmup_temperature=...,
    warmup_iters=...)``.
    """

    def __init__(self, *args, **kwargs) -> None:
        raise ValueError(
            'TeacherTempWarmupHook is gone: remove it from custom_hooks and set the schedule in '
            'the model config, model.teacher=dict(temperature=<teacher_temp>, '
            'warmup_temperature=<warmup_teacher_temp>, warmup_iters=...) '
            f'(got {kwargs}); the distill_loss takes no teacher_temp any more')
