import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import get_dist_info

from silc_seg.registry import MODELS
from silc_seg.utils.dist import all_gather_with_grad, ring_shift_with_grad


def siglip_pair_loss(image_features: torch.Tensor,
                     text_features: torch.Tensor,
                     logit_scale: torch.Tensor,
                     logit_bias: torch.Tensor,
                     negatives_only: bool = False) -> torch.Tensor:
    """Sigmoid loss of one block of image-text pairs, summed and divided by the image count.

    Args:
        image_features (Tensor): ``(N, C)`` L2-normalized image embeddings.
        text_features (Tensor): ``(M, C)`` L2-normalized text embeddings.
        logit_scale (Tensor): Scalar multiplier (already exp'ed).
        logit_bias (Tensor): Scalar bias.
        negatives_only (bool): Every pair is negative (texts from another rank). Otherwise the
            diagonal holds the positives (``M == N``).

    Returns:
        Tensor: ``-sum(log sigmoid(label * logit)) / N``.
    """
    logits = logit_scale * image_features @ text_features.T + logit_bias
    labels = -torch.ones_like(logits)
    if not negatives_only:
        labels = labels + 2 * torch.eye(*logits.shape, device=logits.device, dtype=logits.dtype)
    return -F.logsigmoid(labels * logits).sum() / image_features.shape[0]


def siglip_loss(image_features: torch.Tensor,
                text_features: torch.Tensor,
                logit_scale: torch.Tensor,
                logit_bias: torch.Tensor,
                dist_impl: str = 'ring') -> torch.Tensor:
    """SigLIP loss of this rank's images against the texts of every rank.

    Each rank's value is its share of the global-batch loss: the mean over ranks equals the loss
    of one process holding the whole batch (and, under DistributedDataParallel, so do the
    gradients; see :mod:`silc_seg.utils.dist`).

    Args:
        image_features (Tensor): ``(N, C)`` L2-normalized image embeddings of this rank.
        text_features (Tensor): ``(N, C)`` L2-normalized paired text embeddings of this rank.
        logit_scale (Tensor): Scalar multiplier (already exp'ed).
        logit_bias (Tensor): Scalar bias.
        dist_impl (str): How texts travel between ranks: ``'ring'`` passes them round the ring
            one neighbour at a time (one extra ``(N, C)`` block in memory, as SigLIP's chunked
            implementation), ``'gather'`` all-gathers them at once.

    Returns:
        Tensor: The scalar loss.
    """
    if image_features.shape != text_features.shape:
        raise ValueError('image and text features must pair up row by row, got shapes '
                         f'{tuple(image_features.shape)} and {tuple(text_features.shape)}')
    loss = siglip_pair_loss(image_features, text_features, logit_scale, logit_bias)
    rank, world_size = get_dist_info()
    if world_size == 1:
        return loss
    if dist_impl == 'ring':
        received = text_features
        for _ in range(world_size - 1):
            received = ring_shift_with_grad(received)
            loss = loss + siglip_pair_loss(
                image_features, received, logit_scale, logit_bias, negatives_only=True)
    elif dist_impl == 'gather':
        all_text = all_gather_with_grad(text_features).chunk(world_size, dim=0)
        for other_rank, other_text in enumerate(all_text):
            if other_rank != rank:
                loss = loss + siglip_pair_loss(
                    image_features, other_text, logit_scale, logit_bias, negatives_only=True)
    else:
        raise ValueError(f"dist_impl must be 'ring' or 'gather', got {dist_impl!r}")
    return loss


@MODELS.register_module()
class SigLipLoss(nn.Module):
    """Sigmoid image-text loss of SigLIP (Zhai et al., 2023) with learnable scale and bias.

    ``logit_scale`` holds the log of the multiplier and ``logit_bias`` the bias (OpenCLIP /
    big_vision names), initialized to ``log(10)`` and ``-10`` as in the paper.

    Args:
        init_logit_scale (float): Initial log multiplier. Defaults to ``log(10)``.
        init_logit_bias (float): Initial bias. Defaults to -10.
        max_logit_scale (float, optional): Upper bound of the multiplier; None (SigLIP) leaves
            it free. Defaults to None.
        dist_impl (str): ``'ring'`` or ``'gather'``, see :func:`siglip_loss`. Defaults to
            ``'ring'``.
    """

    def __init__(self,
                 init_logit_scale: float = math.log(10),
                 init_logit_bias: float = -10.0,
                 max_logit_scale: Optional[float] = None,
                 dist_impl: str = 'ring') -> None:
        super().__init__()
        if dist_impl not in ('ring', 'gather'):
            raise ValueError(f"dist_impl must be 'ring' or 'gather', got {dist_impl!r}")
        self.logit_scale = nn.Parameter(torch.tensor(float(init_logit_scale)))
        self.logit_bias = nn.Parameter(torch.tensor(float(init_logit_bias)))
        self.max_logit_scale = max_logit_scale
        self.dist_impl = dist_impl

    def scale(self) -> torch.Tensor:
        """The multiplier applied to cosine similarities."""
        scale = self.logit_scale.exp()
        if self.max_logit_scale is not None:
            scale = scale.clamp(max=self.max_logit_scale)
        return scale

    def logit_params(self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(scale, bias)`` for computing logits outside the loss."""
        return self.scale(), self.logit_bias

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """
        Args:
            image_features (Tensor): ``(N, C)`` L2-normalized image embeddings.
            text_features (Tensor): ``(N, C)`` L2-normalized paired text embeddings.

        Returns:
            Tensor: The scalar loss (this rank's share, see :func:`siglip_loss`).
        """
        return siglip_loss(image_features, text_features, self.scale(), self.logit_bias,
                           self.dist_impl)
