"""Per-class binary cross-entropy over one-hot label maps, ignored pixels as all-negative targets
(CAT-Seg's training loss)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from silc_seg.registry import MODELS


def per_class_bce_loss(logits: torch.Tensor,
                       labels: torch.Tensor,
                       ignore_index: int = 255) -> torch.Tensor:
    """Binary cross-entropy of every class logit against the one-hot label, averaged over all
    pixels and classes.

    As in CAT-Seg (cvlab-kaist/CAT-Seg ``cat_seg/cat_seg_model.py``, ``CATSeg.forward``), a pixel
    labelled ``ignore_index`` is not left out: its target is zero for every class, so it still
    pushes every class logit down, and it counts in the average.

    Args:
        logits (Tensor): ``(B, C, H, W)`` class logits.
        labels (Tensor): ``(B, H, W)`` label values in ``[0, C)`` or ``ignore_index``.
        ignore_index (int): label value whose pixels get all-negative targets.

    Returns:
        Tensor: the scalar mean over ``B * C * H * W`` elements.
    """
    if logits.dim() != 4 or labels.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f'expected (B, C, H, W) logits and (B, H, W) labels, got '
                         f'{tuple(logits.shape)} and {tuple(labels.shape)}')
    num_classes = logits.shape[1]
    ignored = labels == ignore_index
    # one_hot of (C + 1) classes puts the ignored pixels in an extra column that is dropped
    targets = F.one_hot(labels.masked_fill(ignored, num_classes).long(), num_classes + 1)
    targets = targets[..., :num_classes].permute(0, 3, 1, 2).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, targets)


@MODELS.register_module()
class PerClassBCELoss(nn.Module):
    """:func:`per_class_bce_loss` as a decode-head loss (CAT-Seg's default).

    To leave ignored pixels out of the loss instead (sum and average over the other pixels
    only), use mmseg's ``dict(type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True)``.

    Args:
        loss_weight (float): multiplier of the loss.
        loss_name (str): key of the loss in the loss dict (must start with ``loss_``).
    """

    def __init__(self, loss_weight: float = 1.0, loss_name: str = 'loss_ce'):
        super().__init__()
        if not loss_name.startswith('loss_'):
            raise ValueError(f"loss_name must start with 'loss_' to be optimized, got "
                             f'{loss_name!r}')
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        """Key of the loss in the loss dict."""
        return self._loss_name

    def forward(self,
                logits: torch.Tensor,
                labels: torch.Tensor,
                ignore_index: int = 255,
                **kwargs) -> torch.Tensor:
        """``loss_weight * per_class_bce_loss(logits, labels, ignore_index)``."""
        return self.loss_weight * per_class_bce_loss(logits, labels, ignore_index)
