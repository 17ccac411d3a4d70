from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from silc_seg.registry import HOOKS


@HOOKS.register_module()
class TeacherTempWarmupHook(Hook):
    """Linear warm-up of the distillation teacher temperature (DINO).

    Before iteration ``i`` sets ``model.distill_loss.teacher_temp`` to
    ``warmup_teacher_temp + (teacher_temp - warmup_teacher_temp) * min(i / warmup_iters, 1)``
    and logs it as ``train/teacher_temp``. A low temperature early keeps the teacher's targets
    sharp while its prototypes are still random, which avoids collapse.

    Args:
        warmup_teacher_temp (float): Temperature at iteration 0. Defaults to 0.04.
        teacher_temp (float): Temperature from ``warmup_iters`` on. Defaults to 0.07.
        warmup_iters (int): Length of the warm-up. Defaults to 30000.
    """

    priority = 'NORMAL'

    def __init__(self,
                 warmup_teacher_temp: float = 0.04,
                 teacher_temp: float = 0.07,
                 warmup_iters: int = 30000) -> None:
        if warmup_teacher_temp <= 0 or teacher_temp <= 0:
            raise ValueError('temperatures must be positive, got '
                             f'{warmup_teacher_temp} and {teacher_temp}')
        if warmup_iters < 0:
            raise ValueError(f'warmup_iters must be >= 0, got {warmup_iters}')
        self.warmup_teacher_temp = warmup_teacher_temp
        self.teacher_temp = teacher_temp
        self.warmup_iters = warmup_iters

    def temp_at(self, iteration: int) -> float:
        if self.warmup_iters == 0:
            return self.teacher_temp
        progress = min(iteration / self.warmup_iters, 1.0)
        return self.warmup_teacher_temp + (self.teacher_temp - self.warmup_teacher_temp) * progress

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        distill_loss = getattr(model, 'distill_loss', None)
        if distill_loss is None:
            raise RuntimeError('TeacherTempWarmupHook needs a model with a distill_loss (SILC '
                               f'with distill_head set); {type(model).__name__} has none')
        temp = self.temp_at(runner.iter)
        distill_loss.teacher_temp = temp
        runner.message_hub.update_scalar('train/teacher_temp', temp)
