import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_gather, get_dist_info

from silc_seg.registry import MODELS
from silc_seg.utils.dist import all_gather_with_grad


def gather_features(features: torch.Tensor, gather_with_grad: bool = True) -> torch.Tensor:
    """Features of every rank, concatenated in rank order.

    Args:
        features (Tensor): ``(N, C)`` local features.
        gather_with_grad (bool): Let gradients flow to every rank's features. Without it, only
            this rank's own slice keeps its gradient (OpenCLIP's ``gather_with_grad=False``).

    Returns:
        Tensor: ``(world_size * N, C)``.
    """
    if gather_with_grad:
        return all_gather_with_grad(features)
    rank, _ = get_dist_info()
    gathered = all_gather(features.detach())
    gathered[rank] = features
    return torch.cat(gathered, dim=0)


def clip_contrastive_loss(image_features: torch.Tensor,
                          text_features: torch.Tensor,
                          logit_scale: torch.Tensor,
                          local_loss: bool = False,
                          gather_with_grad: bool = True) -> torch.Tensor:
    """Symmetric InfoNCE of CLIP over the global (all-rank) batch.

    Args:
        image_features (Tensor): ``(N, C)`` L2-normalized image embeddings of this rank.
        text_features (Tensor): ``(N, C)`` L2-normalized text embeddings, row ``i`` pairs with
            image row ``i``.
        logit_scale (Tensor): Scalar multiplier of the cosine similarities (already exp'ed).
        local_loss (bool): Compute only this rank's rows of the logit matrix (against every
            rank's features): ``O(N * world_size * N)`` memory instead of
            ``O((world_size * N) ** 2)``. The mean over ranks equals the full loss.
        gather_with_grad (bool): See :func:`gather_features`.

    Returns:
        Tensor: The scalar loss.
    """
    if image_features.shape != text_features.shape:
        raise ValueError('image and text features must pair up row by row, got shapes '
                         f'{tuple(image_features.shape)} and {tuple(text_features.shape)}')
    rank, world_size = get_dist_info()
    num_local = image_features.shape[0]
    if world_size > 1:
        all_image = gather_features(image_features, gather_with_grad)
        all_text = gather_features(text_features, gather_with_grad)
    else:
        all_image, all_text = image_features, text_features
    if local_loss:
        logits_per_image = logit_scale * image_features @ all_text.T
        logits_per_text = logit_scale * text_features @ all_image.T
        labels = torch.arange(num_local, device=image_features.device) + rank * num_local
    else:
        logits_per_image = logit_scale * all_image @ all_text.T
        logits_per_text = logits_per_image.T
        labels = torch.arange(all_image.shape[0], device=image_features.device)
    return (F.cross_entropy(logits_per_image, labels) +
            F.cross_entropy(logits_per_text, labels)) / 2


@MODELS.register_module()
class ClipContrastiveLoss(nn.Module):
    """CLIP image-text contrastive loss with a learnable temperature (Radford et al., 2021).

    The parameter ``logit_scale`` holds the *log* of the multiplier (OpenCLIP's convention, so
    converted checkpoints load as they are); the multiplier ``exp(logit_scale)`` is clamped at
    ``max_logit_scale`` as in CLIP.

    Args:
        init_logit_scale (float): Initial log multiplier. Defaults to ``log(1 / 0.07)``.
        max_logit_scale (float): Upper bound of the multiplier. Defaults to 100.
        learnable_logit_scale (bool): Train the multiplier. Defaults to True.
        local_loss (bool): See :func:`clip_contrastive_loss`. Defaults to False.
        gather_with_grad (bool): See :func:`gather_features`. Defaults to True, which together
            with DistributedDataParallel gives exactly the gradients of the global batch.
    """

    def __init__(self,
                 init_logit_scale: float = math.log(1 / 0.07),
                 max_logit_scale: float = 100.0,
                 learnable_logit_scale: bool = True,
                 local_loss: bool = False,
                 gather_with_grad: bool = True) -> None:
        super().__init__()
        if max_logit_scale <= 0:
            raise ValueError(f'max_logit_scale must be positive, got {max_logit_scale}')
        self.logit_scale = nn.Parameter(
            torch.tensor(float(init_logit_scale)), requires_grad=learnable_logit_scale)
        self.max_logit_scale = max_logit_scale
        self.local_loss = local_loss
        self.gather_with_grad = gather_with_grad

    def scale(self) -> torch.Tensor:
        """The multiplier applied to cosine similarities, ``min(exp(logit_scale), max)``."""
        return self.logit_scale.exp().clamp(max=self.max_logit_scale)

    def logit_params(self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(scale, bias)`` for computing logits outside the loss (no bias for CLIP)."""
        return self.scale(), None

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """
        Args:
            image_features (Tensor): ``(N, C)`` L2-normalized image embeddings.
            text_features (Tensor): ``(N, C)`` L2-normalized paired text embeddings.

        Returns:
            Tensor: The scalar loss.
        """
        return clip_contrastive_loss(image_features, text_features, self.scale(), self.local_loss,
                                     self.gather_with_grad)
