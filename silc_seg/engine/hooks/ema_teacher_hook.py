import math
from typing import Optional

import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from silc_seg.registry import HOOKS


def cosine_momentum(step: int, total_steps: int, momentum: float, end_momentum: float) -> float:
    """DINO's teacher momentum schedule: cosine from ``momentum`` (step 0) towards
    ``end_momentum`` (reached at ``step == total_steps``, so never during training)."""
    progress = min(step / max(total_steps, 1), 1.0)
    return end_momentum - (end_momentum - momentum) * (math.cos(math.pi * progress) + 1) / 2


def scale_momentum(momentum: float, batch_size: int, base_batch_size: int) -> float:
    """EMA scaling rule ``momentum ** (batch_size / base_batch_size)``.

    Busbridge et al., "How to Scale Your EMA" (NeurIPS 2023): with ``kappa`` times the batch
    (and the learning rate scaled accordingly), raising the momentum to the power ``kappa``
    keeps the teacher's averaging horizon the same in samples seen, so a run on fewer GPUs
    follows the same dynamics as the reference run.

    Args:
        momentum (float): Momentum tuned for ``base_batch_size``, in ``[0, 1)``.
        batch_size (int): Global batch size of one optimizer update.
        base_batch_size (int): Batch size ``momentum`` was tuned for.

    Returns:
        float: The momentum for ``batch_size``.
    """
    if batch_size <= 0 or base_batch_size <= 0:
        raise ValueError(f'batch sizes must be positive, got {batch_size} and {base_batch_size}')
    return momentum**(batch_size / base_batch_size)


@HOOKS.register_module()
class EMATeacherHook(Hook):
    """Update the SILC teacher as an exponential moving average of the student.

    After every optimizer step (not after the accumulation-only iterations of gradient
    accumulation, nor after a step skipped for a non-finite loss):
    ``teacher <- m * teacher + (1 - m) * student`` for every parameter of each
    ``(student, teacher)`` pair of ``model.student_teacher_pairs()`` (fused ``torch._foreach``
    ops), and buffers copied from the student. ``m`` is ``momentum`` throughout, or, with
    ``end_momentum``, a cosine from ``momentum`` to ``end_momentum`` over the training iterations
    (DINO). ``end_momentum`` must stay below 1: at 1 the teacher freezes and stops inheriting
    what the image-text loss teaches the student. The SILC paper keeps the momentum fixed for
    that reason (so do our configs; the cosine schedule is an option). With ``base_batch_size``,
    both values are rescaled to the global batch of one optimizer update ``B`` (per-GPU batch
    x world size x gradient accumulation) by :func:`scale_momentum`, ``m ** (B / base)``. The
    value used is logged as ``train/ema_momentum``; the number of updates is stored in
    checkpoints (``ema_teacher``).

    Where the teacher's starting weights come from is :class:`SILC`'s business (it copies the
    student into the teacher whenever weights arrive without teacher weights); this hook only
    checks, before training, that teacher and student have the same parameters.

    MMEngine's ``EMAHook`` / ``ExponentialMovingAverage`` and mmpretrain's
    ``MomentumAnnealingEMA`` do not fit: they keep their own deep copy of the *whole* model
    (``module.*`` keys, outside the model's state dict) and swap it in for validation and
    checkpoints, whereas the SILC teacher is part of the model (``teacher_image_encoder.*``,
    ``teacher_head.*``, see ``docs/design.md``), feeds the training loss and covers only the
    image tower and head; they also use MMEngine's inverted momentum convention.

    Args:
        momentum (float): Teacher momentum ``m`` (at the start). Defaults to 0.996.
        end_momentum (float, optional): Final momentum of the cosine schedule; None keeps
            ``momentum`` fixed. Defaults to None.
        total_iters (int, optional): Length of the schedule; defaults to the runner's
            ``max_iters``.
        base_batch_size (int, optional): Global batch size that ``momentum`` and
            ``end_momentum`` are tuned for; None uses them as given. Defaults to None.
    """

    priority = 'NORMAL'

    def __init__(self,
                 momentum: float = 0.996,
                 end_momentum: Optional[float] = None,
                 total_iters: Optional[int] = None,
                 base_batch_size: Optional[int] = None) -> None:
        for name, value in (('momentum', momentum), ('end_momentum', end_momentum)):
            if value is not None and not 0.0 <= value < 1.0:
                raise ValueError(
                    f'{name} must be in [0, 1), got {value}: a momentum of 1 freezes the '
                    'teacher, which then stops following the student')
        self.momentum = momentum
        self.end_momentum = end_momentum
        self.total_iters = total_iters
        if base_batch_size is not None and base_batch_size <= 0:
            raise ValueError(f'base_batch_size must be positive, got {base_batch_size}')
        self.base_batch_size = base_batch_size
        # Global batch of one optimizer update, set in before_train when base_batch_size is set.
        self.batch_size: Optional[int] = None
        self.num_updates = 0

    def momentum_at(self, iteration: int, max_iters: int) -> float:
        """Momentum of the update after iteration ``iteration`` (0-based)."""
        if self.end_momentum is None:
            value = self.momentum
        else:
            value = cosine_momentum(iteration, self.total_iters or max_iters, self.momentum,
                                    self.end_momentum)
        if self.base_batch_size is not None and self.batch_size is not None:
            value = scale_momentum(value, self.batch_size, self.base_batch_size)
        if not value < 1.0:
            raise RuntimeError(f'EMA momentum reached {value} at iteration {iteration}; it must '
                               'stay below 1.0')
        return value

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train(self, runner) -> None:
        model = self._model(runner)
        pairs = getattr(model, 'student_teacher_pairs', lambda: [])()
        if not pairs:
            raise RuntimeError(
                'EMATeacherHook needs a model with an EMA teacher (SILC with distill_head set); '
                f'{type(model).__name__} has none: remove the hook from custom_hooks')
        for student, teacher in pairs:
            student_names = [name for name, _ in student.named_parameters()]
            teacher_names = [name for name, _ in teacher.named_parameters()]
            if student_names != teacher_names:
                raise RuntimeError('teacher and student parameters do not match: '
                                   f'{sorted(set(student_names) ^ set(teacher_names))[:10]}')
        if self.base_batch_size is not None:
            self.batch_size = global_batch_size(runner)
            runner.logger.info(
                f'EMATeacherHook: global batch {self.batch_size} per update, momentum tuned for '
                f'{self.base_batch_size}: {self.momentum} -> '
                f'{scale_momentum(self.momentum, self.batch_size, self.base_batch_size):.6f}')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        model = self._model(runner)
        # NonFiniteGuardOptimWrapper dropped this step's update: the student did not move.
        if getattr(runner.optim_wrapper, 'last_step_skipped', False):
            return
        should_update = getattr(runner.optim_wrapper, 'should_update', None)
        if should_update is not None and not should_update():
            return
        momentum = self.momentum_at(runner.iter, runner.max_iters)
        with torch.no_grad():
            for student, teacher in model.student_teacher_pairs():
                ema_update(teacher, student, momentum)
        self.num_updates += 1
        runner.message_hub.update_scalar('train/ema_momentum', momentum)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['ema_teacher'] = dict(num_updates=self.num_updates)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Restore the update count; when the checkpoint has no teacher (a CLIP-only run
        resumed as SILC), fit its optimizer and scheduler states to this model's extra
        parameters (the teacher itself then follows the student: see
        :meth:`SILC._fill_teachers_from_students`)."""
        if 'ema_teacher' in checkpoint:
            self.num_updates = int(checkpoint['ema_teacher']['num_updates'])
        model = self._model(runner)
        state_dict = checkpoint.get('state_dict', {})
        names = [teacher for teacher, _ in getattr(model, 'teacher_student_names', list)()]
        has_teacher = any(key.split('.', 1)[0] in names or key.startswith('module.')
                          and key.split('.', 2)[1] in names for key in state_dict)
        if has_teacher or 'optimizer' not in checkpoint:
            return
        # Runner.resume builds them right after this hook anyway (a no-op when built).
        runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
        if runner.param_schedulers is not None:
            runner.param_schedulers = runner.build_param_scheduler(runner.param_schedulers)
        optimizer = getattr(runner.optim_wrapper, 'optimizer', None)
        if not isinstance(optimizer, torch.optim.Optimizer):
            return
        extra = extend_optimizer_state(checkpoint, optimizer.state_dict(),
                                       runner.param_schedulers)
        if extra:
            runner.logger.warning(
                f'The checkpoint has no EMA teacher (a contrastive-only run?): the teacher '
                f'starts as the loaded student, and the {extra} parameters it lacks (the '
                'distillation head) start with a fresh optimizer state at the resumed '
                'learning rate.')


def extend_optimizer_state(checkpoint: dict, current: dict, param_schedulers=None) -> int:
    """Fit a checkpoint's optimizer (and scheduler) state to a model with more parameters.

    For a model whose trainable parameters start with those of the checkpoint's model, in
    the same order (SILC's ``image_encoder``, ``text_encoder``, ``contrastive_loss`` come
    before ``distill_head``): the loaded groups keep their hyper-parameters and moments, the
    parameters the checkpoint lacks get no state (AdamW starts their moments at zero), and
    groups only this model has take the learning rate the loaded groups are at (times their
    own ratio to the base learning rate). Scheduler states get the new groups' base values.
    ``checkpoint['optimizer']`` (and ``checkpoint['param_schedulers']``) are changed in place.

    Returns:
        int: How many parameters the checkpoint lacked (0: nothing changed).
    """
    loaded = checkpoint['optimizer']
    old_groups, new_groups = loaded['param_groups'], current['param_groups']
    num_old = sum(len(group['params']) for group in old_groups)
    num_new = sum(len(group['params']) for group in new_groups)
    if num_old >= num_new or len(old_groups) > len(new_groups):
        return 0
    for old, new in zip(old_groups, new_groups):
        if new['params'][:len(old['params'])] != old['params']:
            return 0  # not a prefix layout: leave it to the optimizer's own check
    lr_ratio = old_groups[0]['lr'] / new_groups[0].get('initial_lr', new_groups[0]['lr'])
    groups = []
    for index, new in enumerate(new_groups):
        if index < len(old_groups):
            groups.append(dict(old_groups[index], params=list(new['params'])))
        else:
            groups.append(dict(new, lr=new.get('initial_lr', new['lr']) * lr_ratio))
    loaded['param_groups'] = groups
    schedulers = checkpoint.get('param_schedulers')
    if schedulers and param_schedulers and isinstance(param_schedulers, list):
        for state, scheduler in zip(schedulers, param_schedulers):
            for key in ('base_values', '_last_value'):
                fresh = getattr(scheduler, key, None)
                if key in state and fresh is not None and len(state[key]) < len(fresh):
                    scale = 1.0 if key == 'base_values' else lr_ratio
                    state[key] = list(state[key]) + [
                        value * scale for value in fresh[len(state[key]):]]
    return num_new - num_old


def global_batch_size(runner) -> int:
    """Samples behind one optimizer update: per-process batch x world size x accumulation."""
    loader = runner.train_dataloader
    batch_size = getattr(loader, 'batch_size', None)
    if batch_size is None:  # a batch sampler instead of batch_size
        batch_size = getattr(getattr(loader, 'batch_sampler', None), 'batch_size', None)
    if batch_size is None:
        raise RuntimeError('EMATeacherHook(base_batch_size=...) cannot read the batch size of '
                           'the train dataloader; set base_batch_size=None')
    accumulate = getattr(runner.optim_wrapper, '_accumulative_counts', 1)
    return int(batch_size) * get_world_size() * int(accumulate)


@torch.no_grad()
def ema_update(teacher: torch.nn.Module, student: torch.nn.Module, momentum: float) -> None:
    """``teacher <- momentum * teacher + (1 - momentum) * student`` (parameters), buffers copied.

    Args:
        teacher (nn.Module): Updated in place.
        student (nn.Module): Same architecture as ``teacher``.
        momentum (float): In ``[0, 1)``.
    """
    teacher_params = list(teacher.parameters())
    student_params = [param.detach() for param in student.parameters()]
    torch._foreach_mul_(teacher_params, momentum)
    torch._foreach_add_(teacher_params, student_params, alpha=1 - momentum)
    for teacher_buffer, student_buffer in zip(teacher.buffers(), student.buffers()):
        teacher_buffer.copy_(student_buffer)
