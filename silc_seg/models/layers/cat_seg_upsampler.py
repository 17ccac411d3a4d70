"""Upsampling decoder block of CAT-Seg, guided by intermediate image-encoder features."""
from collections import OrderedDict
from typing import Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn


def conv_gn_relu(in_channels: int, out_channels: int, num_groups: int) -> nn.Sequential:
    """3x3 conv (no bias), GroupNorm, ReLU with PyTorch's default initialization, as CAT-Seg's
    ``DoubleConv``; named like mmcv's ``ConvModule`` (``conv``, ``gn``) so checkpoints keep
    their keys, without ``ConvModule``'s Kaiming re-initialization."""
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            gn=nn.GroupNorm(num_groups, out_channels),
            activate=nn.ReLU(inplace=True)))


class GuidedUpsampleBlock(BaseModule):
    """Upsample the cost embedding of every class 2x (transposed conv), concatenate the image's
    guidance features at that resolution, then two 3x3 conv + GroupNorm + ReLU layers.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        guidance_channels (int): channels of the guidance features; the transposed conv outputs
            ``in_channels - guidance_channels`` so the concatenation has ``in_channels``.
        channels_per_group (int): GroupNorm group size (CAT-Seg: 16).
        init_cfg (dict, optional): initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 guidance_channels: int,
                 channels_per_group: int = 16,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if not 0 <= guidance_channels < in_channels:
            raise ValueError(f'guidance_channels must be in [0, {in_channels}), '
                             f'got {guidance_channels}')
        if out_channels % channels_per_group != 0:
            raise ValueError(f'out_channels {out_channels} is not a multiple of the GroupNorm '
                             f'group size {channels_per_group}')
        self.up = nn.ConvTranspose2d(in_channels, in_channels - guidance_channels, 2, stride=2)
        num_groups = out_channels // channels_per_group
        self.convs = nn.Sequential(
            conv_gn_relu(in_channels, out_channels, num_groups),
            conv_gn_relu(out_channels, out_channels, num_groups))

    def forward(self, x: Tensor, guidance: Optional[Tensor]) -> Tensor:
        """
        Args:
            x (Tensor): (B * T, C_in, h, w) cost embeddings of T classes per image.
            guidance (Tensor, optional): (B, C_g, 2h, 2w) guidance of each image.

        Returns:
            Tensor: (B * T, C_out, 2h, 2w).
        """
        x = self.up(x)
        if guidance is not None:
            if guidance.shape[-2:] != x.shape[-2:]:
                raise ValueError(f'guidance is {tuple(guidance.shape[-2:])} but the upsampled '
                                 f'cost embedding is {tuple(x.shape[-2:])}')
            num_classes = x.shape[0] // guidance.shape[0]
            x = torch.cat([x, guidance.repeat_interleave(num_classes, dim=0)], dim=1)
        return self.convs(x)
