import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_reduce

from silc_seg.registry import MODELS


def teacher_probabilities(teacher_output: torch.Tensor, center: torch.Tensor,
                          teacher_temp: float) -> torch.Tensor:
    """Centered and sharpened teacher targets, ``softmax((t - center) / teacher_temp)``.

    Args:
        teacher_output (Tensor): ``(N, K)`` teacher head outputs.
        center (Tensor): ``(1, K)`` running mean of teacher outputs.
        teacher_temp (float): Sharpening temperature.

    Returns:
        Tensor: ``(N, K)`` probabilities, without gradient.
    """
    return F.softmax((teacher_output.detach() - center) / teacher_temp, dim=-1)


def local_global_distill_loss(student_output: torch.Tensor, teacher_probs: torch.Tensor,
                              batch_size: int, student_temp: float) -> torch.Tensor:
    """DINO cross-entropy between every teacher (global) view and every other student view.

    Views are stacked view-major (row ``v * batch_size + b`` is view ``v`` of sample ``b``).
    The first teacher views are the same crops as the first student views, so pairs with the
    same view index are skipped: teacher view ``i`` teaches every student view ``j != i``.

    Args:
        student_output (Tensor): ``(Vs * B, K)`` student head outputs (global views first,
            then local views).
        teacher_probs (Tensor): ``(Vt * B, K)`` teacher targets, ``Vt <= Vs``.
        batch_size (int): ``B``.
        student_temp (float): Student softmax temperature.

    Returns:
        Tensor: The loss averaged over samples and over the ``Vt * (Vs - 1)`` view pairs.
    """
    num_student_views, num_teacher_views = _num_views(student_output, teacher_probs, batch_size)
    if num_student_views < 2:
        raise ValueError('self-distillation needs at least 2 student views, got '
                         f'{num_student_views}')
    student_log_probs = F.log_softmax(student_output / student_temp, dim=-1)
    student_views = student_log_probs.chunk(num_student_views, dim=0)
    teacher_views = teacher_probs.chunk(num_teacher_views, dim=0)
    total, num_pairs = 0.0, 0
    for i, target in enumerate(teacher_views):
        for j, log_probs in enumerate(student_views):
            if i == j:
                continue
            total = total + torch.sum(-target * log_probs, dim=-1).mean()
            num_pairs += 1
    return total / num_pairs


@torch.no_grad()
def distill_diagnostics(student_output: torch.Tensor, teacher_probs: torch.Tensor, batch_size: int,
                        student_temp: float) -> dict:
    """Health of the self-distillation for the log (collapse detection).

    Args:
        student_output (Tensor): ``(Vs * B, K)`` student head outputs, view-major.
        teacher_probs (Tensor): ``(Vt * B, K)`` teacher targets (:func:`teacher_probabilities`).
        batch_size (int): ``B``.
        student_temp (float): Student softmax temperature.

    Returns:
        dict: ``teacher_entropy``: mean entropy (nats) of the teacher's target distributions
        (``ln K`` when uniform: collapse to uniform; near 0: one-hot targets);
        ``student_teacher_kl``: mean ``KL(teacher || student)`` over the pairs the loss uses,
        so ``loss = teacher_entropy + student_teacher_kl``; ``prototypes_used``: how many
        distinct prototypes are the argmax of some teacher target in the batch (1: every
        image gets the same target, collapse to one prototype).
    """
    num_student_views, num_teacher_views = _num_views(student_output, teacher_probs, batch_size)
    log_teacher = teacher_probs.clamp_min(1e-30).log()
    entropy = -(teacher_probs * log_teacher).sum(-1)
    student_log_probs = F.log_softmax(student_output.float() / student_temp, dim=-1)
    student_views = student_log_probs.chunk(num_student_views, dim=0)
    kl_total, num_pairs = 0.0, 0
    teacher_views = zip(
        teacher_probs.chunk(num_teacher_views), log_teacher.chunk(num_teacher_views))
    for i, (target, log_target) in enumerate(teacher_views):
        for j, log_probs in enumerate(student_views):
            if i != j:
                kl_total = kl_total + (target * (log_target - log_probs)).sum(-1).mean()
                num_pairs += 1
    return dict(
        teacher_entropy=entropy.mean(),
        student_teacher_kl=kl_total / num_pairs,
        prototypes_used=torch.tensor(
            float(teacher_probs.argmax(-1).unique().numel()), device=teacher_probs.device))


def _num_views(student_output, teacher_output, batch_size):
    for name, output in (('student', student_output), ('teacher', teacher_output)):
        if output.dim() != 2 or output.shape[0] % batch_size:
            raise ValueError(f'{name} output must be (num_views * {batch_size}, K), got '
                             f'{tuple(output.shape)}')
    if student_output.shape[1] != teacher_output.shape[1]:
        raise ValueError('student and teacher outputs have different widths: '
                         f'{student_output.shape[1]} vs {teacher_output.shape[1]}')
    num_student_views = student_output.shape[0] // batch_size
    num_teacher_views = teacher_output.shape[0] // batch_size
    if num_teacher_views > num_student_views:
        raise ValueError(f'the teacher has more views ({num_teacher_views}) than the student '
                         f'({num_student_views}); the student must see every teacher view')
    return num_student_views, num_teacher_views


@MODELS.register_module()
class LocalGlobalDistillLoss(nn.Module):
    """Local-to-global self-distillation loss of SILC (DINO, Caron et al., 2021).

    The teacher's outputs on the global views are centered with a running mean (``center``,
    momentum ``center_momentum``, over the outputs of all ranks) and sharpened with
    the teacher temperature that the caller passes (the model's ``teacher.temperature``
    schedule); the student's outputs on every view are softened with ``student_temp``; the loss
    is the cross-entropy averaged over all (teacher view, other student view) pairs.

    Args:
        out_channels (int): Number of prototypes ``K``.
        student_temp (float): Defaults to 0.1.
        center_momentum (float): Defaults to 0.9.
        teacher_temp: Not an argument any more (a clear error): the model's
            ``teacher=dict(temperature=...)`` sets it.
    """

    def __init__(self,
                 out_channels: int,
                 student_temp: float = 0.1,
                 center_momentum: float = 0.9,
                 teacher_temp=None) -> None:
        super().__init__()
        if teacher_temp is not None:
            raise ValueError('LocalGlobalDistillLoss takes no teacher_temp: set the teacher '
                             'temperature (and its warm-up) in the model\'s teacher block, '
                             'model.teacher=dict(temperature=..., warmup_temperature=..., '
                             'warmup_iters=...)')
        if not 0.0 <= center_momentum < 1.0:
            raise ValueError(f'center_momentum must be in [0, 1), got {center_momentum}')
        if student_temp <= 0:
            raise ValueError(f'student_temp must be positive, got {student_temp}')
        self.out_channels = out_channels
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.register_buffer('center', torch.zeros(1, out_channels))

    def forward(self, student_output: torch.Tensor, teacher_output: torch.Tensor, batch_size: int,
                teacher_temp: float) -> torch.Tensor:
        """Compute the loss, then (in training mode) update the center.

        Args:
            student_output (Tensor): ``(Vs * B, K)``, view-major, global views first.
            teacher_output (Tensor): ``(Vt * B, K)``, view-major, the global views.
            batch_size (int): ``B``.
            teacher_temp (float): Teacher temperature, positive.

        Returns:
            Tensor: The scalar loss.
        """
        if teacher_output.shape[-1] != self.out_channels:
            raise ValueError(f'expected {self.out_channels} prototypes, got '
                             f'{teacher_output.shape[-1]}')
        if not teacher_temp > 0:
            raise ValueError(f'teacher_temp must be positive, got {teacher_temp}')
        targets = teacher_probabilities(teacher_output, self.center, teacher_temp)
        loss = local_global_distill_loss(student_output, targets, batch_size, self.student_temp)
        if self.training:
            self.update_center(teacher_output)
        return loss

    @torch.no_grad()
    def update_center(self, teacher_output: torch.Tensor) -> None:
        """``center <- m * center + (1 - m) * mean(teacher outputs of all ranks)``; skipped when
        that mean is not finite."""
        # Averaged in the buffer's precision (fp32 under bf16 autocast).
        batch_center = teacher_output.detach().to(self.center.dtype).mean(dim=0, keepdim=True)
        all_reduce(batch_center, op='mean')  # in place; a no-op in a single process
        # A non-finite batch (NonFiniteGuardOptimWrapper rejects its step) must not
        # poison the running center; the reduced value is the same on every rank.
        if torch.isfinite(batch_center).all():
            self.center.mul_(self.center_momentum).add_(
                batch_center, alpha=1 - self.center_momentum)
