"""Losses of masked self-distillation (MaskCLIP of Dong et al., CVPR 2023, arXiv 2208.12262):
the image branch distils the EMA teacher's patch tokens into the student's predictions for the
masked patches; the text branch does masked language modelling."""
import torch
import torch.nn.functional as F

from silc_seg.registry import MODELS
from .local_global_distill_loss import LocalGlobalDistillLoss, teacher_probabilities


def masked_patch_distill_loss(student_output: torch.Tensor, teacher_probs: torch.Tensor,
                              student_temp: float) -> torch.Tensor:
    """Cross-entropy between teacher token distributions and student predictions, over the
    masked patches: ``mean_m sum_k -p_mk log softmax(s_m / student_temp)_k``.

    Every image has the same number of masked patches (see ``silc_seg.models.utils.masking``),
    so this mean equals iBOT's mean over images of the per-image mean over masked patches.

    Args:
        student_output (Tensor): ``(M, K)`` student head outputs at the ``M`` masked patches.
        teacher_probs (Tensor): ``(M, K)`` teacher targets at the same patches.
        student_temp (float): Student softmax temperature.

    Returns:
        Tensor: The scalar loss.
    """
    if student_output.shape != teacher_probs.shape or student_output.dim() != 2:
        raise ValueError('student outputs and teacher targets must both be (M, K), got '
                         f'{tuple(student_output.shape)} and {tuple(teacher_probs.shape)}')
    log_probs = F.log_softmax(student_output / student_temp, dim=-1)
    return torch.sum(-teacher_probs * log_probs, dim=-1).mean()


@MODELS.register_module()
class MaskedPatchDistillLoss(LocalGlobalDistillLoss):
    """Masked self-distillation loss with the teacher as online tokenizer.

    The teacher's head maps each patch of the full image to ``K`` logits; centering (running
    mean over all patches of all ranks, momentum ``center_momentum``) and sharpening
    (``teacher_temp``) turn them into soft tokens, as iBOT's online tokenizer does (Zhou et
    al., ICLR 2022) and DINO does for whole images. Centering, temperatures and their checks
    are those of :class:`LocalGlobalDistillLoss`; only the pairing differs (patch to patch,
    masked patches only, instead of view to view), and the teacher temperature is this loss's
    own, fixed (the model's ``teacher`` schedule drives the local-to-global loss only).

    Args:
        out_channels (int): Number of prototypes ``K``.
        student_temp (float): Defaults to 0.1.
        teacher_temp (float): Defaults to 0.07.
        center_momentum (float): Defaults to 0.9.
    """

    def __init__(self,
                 out_channels: int,
                 student_temp: float = 0.1,
                 teacher_temp: float = 0.07,
                 center_momentum: float = 0.9) -> None:
        super().__init__(out_channels, student_temp=student_temp, center_momentum=center_momentum)
        if not teacher_temp > 0:
            raise ValueError(f'teacher_temp must be positive, got {teacher_temp}')
        self.teacher_temp = teacher_temp

    def forward(self, student_output: torch.Tensor, teacher_output: torch.Tensor,
                patch_mask: torch.Tensor) -> torch.Tensor:
        """Compute the loss, then (in training mode) update the center.

        Args:
            student_output (Tensor): ``(M, K)`` student head outputs at the masked patches, in
                the order of ``patch_mask.nonzero()``.
            teacher_output (Tensor): ``(B, N, K)`` teacher head outputs at every patch of the
                unmasked images.
            patch_mask (Tensor): ``(B, N)`` bool, True at the ``M`` masked patches.

        Returns:
            Tensor: The scalar loss.
        """
        if teacher_output.dim() != 3 or teacher_output.shape[-1] != self.out_channels:
            raise ValueError(f'teacher output must be (B, N, {self.out_channels}), got '
                             f'{tuple(teacher_output.shape)}')
        if patch_mask.shape != teacher_output.shape[:2]:
            raise ValueError(f'patch_mask must be {tuple(teacher_output.shape[:2])}, got '
                             f'{tuple(patch_mask.shape)}')
        targets = teacher_probabilities(teacher_output[patch_mask], self.center, self.teacher_temp)
        loss = masked_patch_distill_loss(student_output, targets, self.student_temp)
        if self.training:
            self.update_center(teacher_output.flatten(0, 1))
        return loss


def masked_lm_loss(token_features: torch.Tensor,
                   target_ids: torch.Tensor,
                   token_mask: torch.Tensor,
                   output_weight: torch.Tensor,
                   output_bias: torch.Tensor = None) -> torch.Tensor:
    """Masked language modelling cross-entropy over the masked positions only.

    Logits are computed for the masked positions alone (``M x V`` instead of ``N x L x V``):
    ``logits = features[mask] @ output_weight.T + output_bias``; the loss is their mean
    cross-entropy against the original token ids.

    Args:
        token_features (Tensor): ``(N, L, C)`` decoder outputs.
        target_ids (Tensor): ``(N, L)`` the unmasked token ids.
        token_mask (Tensor): ``(N, L)`` bool, True at masked positions.
        output_weight (Tensor): ``(V, C)`` output embedding (tied to the token embedding).
        output_bias (Tensor, optional): ``(V,)``.

    Returns:
        Tensor: The scalar loss (0 with a gradient path when nothing is masked).
    """
    if token_features.shape[:2] != target_ids.shape or token_mask.shape != target_ids.shape:
        raise ValueError('token features (N, L, C), target ids (N, L) and mask (N, L) do not '
                         f'match: {tuple(token_features.shape)}, {tuple(target_ids.shape)}, '
                         f'{tuple(token_mask.shape)}')
    if not token_mask.any():
        return token_features.sum() * 0.0
    logits = F.linear(token_features[token_mask], output_weight, output_bias)
    return F.cross_entropy(logits.float(), target_ids[token_mask])
