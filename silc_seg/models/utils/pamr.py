"""Pixel-adaptive mask refinement (PAMR, Araslanov & Roth, CVPR 2020).

Class score maps are diffused over the 8-neighbourhood of every pixel (at several dilations) with
weights from the local colour affinity of the image, so that masks snap to image edges. SCLIP,
NACLIP and ClearCLIP use it as optional post-processing of zero-shot logits.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Index of the centre of a flattened 3x3 window.
_CENTRE = 4


def _neighbourhoods(x: Tensor, dilation: int) -> Tensor:
    """(B, K, H, W) -> (B, K, 9, H, W): the 3x3 neighbourhood of every pixel at ``dilation``,
    with replicate padding at the border."""
    batch_size, channels, height, width = x.shape
    padded = F.pad(x, [dilation] * 4, mode='replicate')
    windows = F.unfold(padded, kernel_size=3, dilation=dilation)
    return windows.view(batch_size, channels, 9, height, width)


def _off_centre(windows: Tensor) -> Tensor:
    """(B, K, 9, H, W) windows -> (B, K, 8, H, W): the 8 neighbours without the centre."""
    return torch.cat([windows[:, :, :_CENTRE], windows[:, :, _CENTRE + 1:]], dim=2)


class PAMR(nn.Module):
    """Pixel-adaptive mask refinement.

    Args:
        num_iter (int): diffusion steps.
        dilations (Sequence[int]): neighbourhood dilations; one local standard deviation over
            all of them scales the colour distances, and the affinities of all dilations are
            normalized together.
    """

    def __init__(self, num_iter: int = 10, dilations: Sequence[int] = (8, 16)):
        super().__init__()
        if num_iter < 1 or not dilations or min(dilations) < 1:
            raise ValueError('PAMR needs num_iter >= 1 and positive dilations, got '
                             f'num_iter={num_iter}, dilations={dilations}')
        self.num_iter = num_iter
        self.dilations = tuple(dilations)

    def _affinity(self, image: Tensor) -> Tensor:
        """(B, K, H, W) image -> (B, 1, 8 * len(dilations), H, W) propagation weights.

        As in the reference (visinf/1-stage-wseg ``models/mods/pamr.py``, copied by SCLIP and
        NACLIP), the local standard deviation is taken once over the 3x3 windows of all
        dilations together (9 * len(dilations) values, the centre counted once per dilation).
        """
        windows = [_neighbourhoods(image, dilation) for dilation in self.dilations]
        local_std = torch.cat(windows, dim=2).std(dim=2, keepdim=True)
        neighbours = torch.cat([_off_centre(w) for w in windows], dim=2)
        distance = (neighbours - image.unsqueeze(2)).abs()
        logits = (-distance / (1e-8 + 0.1 * local_std)).mean(dim=1, keepdim=True)
        return logits.softmax(dim=2)

    def _gather_neighbours(self, masks: Tensor) -> Tensor:
        return torch.cat(
            [_off_centre(_neighbourhoods(masks, dilation)) for dilation in self.dilations], dim=2)

    def forward(self, image: Tensor, masks: Tensor) -> Tensor:
        """Refine ``masks`` along the edges of ``image``.

        Args:
            image (Tensor): (B, K, H, W) guidance image (any normalization).
            masks (Tensor): (B, C, h, w) class scores; resized to (H, W) first.

        Returns:
            Tensor: (B, C, H, W) refined scores.
        """
        masks = F.interpolate(masks, size=image.shape[-2:], mode='bilinear', align_corners=True)
        affinity = self._affinity(image.to(masks.dtype))
        for _ in range(self.num_iter):
            masks = (self._gather_neighbours(masks) * affinity).sum(dim=2)
        return masks
