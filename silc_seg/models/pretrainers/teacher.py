"""The EMA teacher's schedules (momentum, temperature) and its update, as pure functions.

The model calls them from its ``train_step`` (DINOv2 passes the momentum and the teacher
temperature into its step the same way); see ``docs/pretraining.md`` for the values.
"""
import math
from typing import Optional

import torch
import torch.nn as nn


def cosine_momentum(step: int, total_steps: int, momentum: float, end_momentum: float) -> float:
    """DINO's teacher momentum schedule: cosine from ``momentum`` (step 0) towards
    ``end_momentum`` (reached at ``step == total_steps``, so never during training)."""
    progress = min(step / max(total_steps, 1), 1.0)
    return end_momentum - (end_momentum - momentum) * (math.cos(math.pi * progress) + 1) / 2


def scale_momentum(momentum: float, batch_size: int, base_batch_size: int) -> float:
    """EMA scaling rule ``momentum ** (batch_size / base_batch_size)``.

    Busbridge et al., "How to Scale Your EMA" (NeurIPS 2023): with ``kappa`` times the batch,
    raising the momentum to the power ``kappa`` keeps the teacher's averaging horizon the same
    in samples seen.

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


def warmup_temperature(iteration: int, temperature: float, start: float,
                       warmup_iters: int) -> float:
    """DINO's teacher temperature: linear from ``start`` (iteration 0) to ``temperature`` (from
    ``warmup_iters`` on)."""
    if warmup_iters <= 0:
        return temperature
    return start + (temperature - start) * min(iteration / warmup_iters, 1.0)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """``teacher <- momentum * teacher + (1 - momentum) * student`` (parameters, fused
    ``torch._foreach`` ops), buffers copied. Iterates the modules' own (local) tensors only.

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


class TeacherSchedule:
    """The ``teacher=dict(...)`` block of a model with an EMA teacher, checked on build.

    Args:
        momentum (float): EMA momentum ``m`` (at the start), in ``[0, 1)``. Defaults to 0.996.
        end_momentum (float, optional): With it, a cosine from ``momentum`` to ``end_momentum``
            over ``momentum_iters`` (DINO); None keeps ``momentum`` fixed (the SILC paper).
            Defaults to None.
        momentum_iters (int, optional): Length of the cosine; defaults to the run's
            ``max_iters``.
        base_batch_size (int, optional): Global batch that the momenta are tuned for; with it,
            they are rescaled by :func:`scale_momentum` to the actual global batch. Defaults
            to None.
        temperature (float): Teacher temperature of the distillation targets (after the
            warm-up). Defaults to 0.07.
        warmup_temperature (float, optional): Temperature at iteration 0 of a linear warm-up;
            None: no warm-up. Defaults to None.
        warmup_iters (int): Length of the warm-up in iterations. Defaults to 0.
    """

    def __init__(self,
                 momentum: float = 0.996,
                 end_momentum: Optional[float] = None,
                 momentum_iters: Optional[int] = None,
                 base_batch_size: Optional[int] = None,
                 temperature: float = 0.07,
                 warmup_temperature: Optional[float] = None,
                 warmup_iters: int = 0) -> None:
        for name, value in (('momentum', momentum), ('end_momentum', end_momentum)):
            if value is not None and not 0.0 <= value < 1.0:
                raise ValueError(
                    f'teacher.{name} must be in [0, 1), got {value}: a momentum of 1 freezes '
                    'the teacher, which then stops following the student')
        if momentum_iters is not None and momentum_iters <= 0:
            raise ValueError(f'teacher.momentum_iters must be positive, got {momentum_iters}')
        if base_batch_size is not None and base_batch_size <= 0:
            raise ValueError(f'teacher.base_batch_size must be positive, got {base_batch_size}')
        for name, value in (('temperature', temperature), ('warmup_temperature',
                                                           warmup_temperature)):
            if value is not None and not value > 0:
                raise ValueError(f'teacher.{name} must be positive, got {value}')
        if warmup_iters < 0:
            raise ValueError(f'teacher.warmup_iters must be >= 0, got {warmup_iters}')
        if warmup_iters > 0 and warmup_temperature is None:
            raise ValueError('teacher.warmup_iters is set without teacher.warmup_temperature')
        self.momentum = momentum
        self.end_momentum = end_momentum
        self.momentum_iters = momentum_iters
        self.base_batch_size = base_batch_size
        self.temperature = temperature
        self.warmup_temperature = warmup_temperature
        self.warmup_iters = warmup_iters if warmup_temperature is not None else 0

    @property
    def needs_max_iters(self) -> bool:
        """Whether :meth:`momentum_at` needs the run's length."""
        return self.end_momentum is not None and self.momentum_iters is None

    def momentum_at(self,
                    iteration: int,
                    max_iters: Optional[int] = None,
                    batch_size: Optional[int] = None) -> float:
        """Momentum of the update after iteration ``iteration`` (0-based) of ``max_iters``, for
        a global batch of ``batch_size`` (needed with ``base_batch_size``)."""
        value = self.momentum
        if self.end_momentum is not None:
            total = self.momentum_iters or max_iters
            if total is None:
                raise ValueError('a cosine teacher momentum needs the run length (max_iters)')
            value = cosine_momentum(iteration, total, self.momentum, self.end_momentum)
        if self.base_batch_size is not None:
            if batch_size is None:
                raise ValueError('teacher.base_batch_size needs the global batch size')
            value = scale_momentum(value, batch_size, self.base_batch_size)
        if not value < 1.0:
            raise RuntimeError(f'EMA momentum reached {value} at iteration {iteration}; it must '
                               'stay below 1.0')
        return value

    def temperature_at(self, iteration: int) -> float:
        """Teacher temperature of iteration ``iteration`` (0-based)."""
        if self.warmup_temperature is None:
            return self.temperature
        return warmup_temperature(iteration, self.temperature, self.warmup_temperature,
                                  self.warmup_iters)
