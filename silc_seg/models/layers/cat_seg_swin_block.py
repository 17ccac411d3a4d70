"""Spatial cost aggregation of CAT-Seg: Swin blocks whose queries and keys see guidance.

The cost embedding of each class is a ``(h, w)`` map; a pair of Swin blocks (regular then shifted
windows) attends within windows, with the projected visual features of the image concatenated to
the attention's query/key inputs only (values stay the cost embedding), as in CAT-Seg (Cho et al.,
CVPR 2024). CAT-Seg's window attention has no relative position bias; neither has this one.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import FFN
from mmengine.model import BaseModule
from torch import Tensor, nn

from .cat_seg_guided_qkv import GuidedQKV


def window_partition(x: Tensor, window_size: int) -> Tensor:
    """(B, H, W, C) -> (B * num_windows, window_size ** 2, C); H, W multiples of the window."""
    batch, height, width, channels = x.shape
    x = x.view(batch, height // window_size, window_size, width // window_size, window_size,
               channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, channels)


def window_reverse(windows: Tensor, window_size: int, height: int, width: int) -> Tensor:
    """Inverse of :func:`window_partition`: -> (B, H, W, C)."""
    channels = windows.shape[-1]
    x = windows.view(-1, height // window_size, width // window_size, window_size, window_size,
                     channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, channels)


def shifted_window_mask(height: int, width: int, window_size: int, shift_size: int,
                        device: torch.device) -> Tensor:
    """Additive (num_windows, N, N) mask that stops tokens of different image regions, brought
    together by the cyclic shift, from attending to each other (Swin Transformer)."""
    region = torch.zeros((1, height, width, 1), device=device)
    slices = (slice(0, -window_size), slice(-window_size, -shift_size), slice(-shift_size, None))
    label = 0
    for rows in slices:
        for cols in slices:
            region[:, rows, cols, :] = label
            label += 1
    region_windows = window_partition(region, window_size).squeeze(-1)
    different = region_windows[:, None, :] != region_windows[:, :, None]
    return torch.zeros_like(different, dtype=torch.float32).masked_fill(different, -100.0)


class GuidedWindowAttention(GuidedQKV):
    """Multi-head window self-attention whose queries and keys are computed from the input
    concatenated with guidance features; values from the input alone. Arguments as
    :class:`GuidedQKV`."""

    def __init__(self,
                 embed_dims: int,
                 guidance_dims: int,
                 num_heads: int,
                 init_cfg: Optional[dict] = None):
        super().__init__(embed_dims, guidance_dims, num_heads, init_cfg=init_cfg)
        self.scale = (embed_dims // num_heads)**-0.5
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x: Tensor, guidance: Optional[Tensor], mask: Optional[Tensor]) -> Tensor:
        """
        Args:
            x (Tensor): (B * num_windows, N, C) window tokens.
            guidance (Tensor, optional): (B * num_windows, N, G) guidance of the same tokens.
            mask (Tensor, optional): (num_windows, N, N) additive attention mask.

        Returns:
            Tensor: (B * num_windows, N, C).
        """
        batch, length, channels = x.shape
        q, k, v = (t.transpose(1, 2) for t in self.project(x, guidance))
        attn = (q * self.scale) @ k.transpose(-2, -1)
        if mask is not None:
            num_windows = mask.shape[0]
            attn = attn.view(batch // num_windows, num_windows, self.num_heads, length, length)
            attn = (attn + mask[None, :, None]).view(batch, self.num_heads, length, length)
        out = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(batch, length, channels)
        return self.proj(out)


class GuidedSwinBlock(BaseModule):
    """Pre-norm Swin block (window attention + MLP) with guided queries/keys.

    Windows that do not tile the map are handled by zero-padding it to window multiples; maps
    smaller than the window use a single window of the map's shorter side, unshifted (CAT-Seg).

    Args:
        embed_dims (int): channels.
        guidance_dims (int): guidance channels (0: no guidance).
        num_heads (int): attention heads.
        window_size (int): window side.
        shift_size (int): cyclic shift (0 for regular windows).
        mlp_ratio (float): MLP hidden size ratio.
        init_cfg (dict, optional): initialization config.
    """

    def __init__(self,
                 embed_dims: int,
                 guidance_dims: int,
                 num_heads: int,
                 window_size: int,
                 shift_size: int = 0,
                 mlp_ratio: float = 4.0,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if not 0 <= shift_size < window_size:
            raise ValueError(f'shift_size must be in [0, window_size), got {shift_size}')
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = GuidedWindowAttention(embed_dims, guidance_dims, num_heads)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.ffn = FFN(
            embed_dims=embed_dims,
            feedforward_channels=int(embed_dims * mlp_ratio),
            act_cfg=dict(type='GELU'),
            add_identity=False)

    def _window_and_shift(self, height: int, width: int) -> Tuple[int, int]:
        if min(height, width) <= self.window_size:
            return min(height, width), 0
        return self.window_size, self.shift_size

    def forward(self, x: Tensor, guidance: Optional[Tensor]) -> Tensor:
        """
        Args:
            x (Tensor): (B, H, W, C) maps.
            guidance (Tensor, optional): (B, H, W, G) normalized guidance.

        Returns:
            Tensor: (B, H, W, C).
        """
        _, height, width, channels = x.shape
        window, shift = self._window_and_shift(height, width)
        tokens = self.norm1(x)
        if guidance is not None:
            tokens = torch.cat([tokens, guidance], dim=-1)
        pad_h, pad_w = -height % window, -width % window
        tokens = F.pad(tokens, (0, 0, 0, pad_w, 0, pad_h))
        padded_h, padded_w = height + pad_h, width + pad_w
        mask = None
        if shift > 0:
            tokens = torch.roll(tokens, shifts=(-shift, -shift), dims=(1, 2))
            mask = shifted_window_mask(padded_h, padded_w, window, shift, x.device).to(x.dtype)
        windows = window_partition(tokens, window)
        attended = self.attn(windows[..., :channels],
                             windows[..., channels:] if guidance is not None else None, mask)
        attended = window_reverse(attended, window, padded_h, padded_w)
        if shift > 0:
            attended = torch.roll(attended, shifts=(shift, shift), dims=(1, 2))
        x = x + attended[:, :height, :width]
        return x + self.ffn(self.norm2(x))


class GuidedSwinBlockPair(BaseModule):
    """CAT-Seg's spatial aggregation: a regular-window then a shifted-window Swin block applied
    to the cost embedding of every class, guided by (layer-normed) visual features.

    Args:
        embed_dims (int): cost-embedding channels.
        guidance_dims (int): projected visual guidance channels (0: no guidance).
        num_heads (int): attention heads.
        window_size (int): window side; the second block shifts by ``window_size // 2``.
        init_cfg (dict, optional): initialization config.
    """

    def __init__(self,
                 embed_dims: int,
                 guidance_dims: int,
                 num_heads: int = 4,
                 window_size: int = 12,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.block1 = GuidedSwinBlock(embed_dims, guidance_dims, num_heads, window_size, 0)
        self.block2 = GuidedSwinBlock(embed_dims, guidance_dims, num_heads, window_size,
                                      window_size // 2)
        self.guidance_norm = nn.LayerNorm(guidance_dims) if guidance_dims > 0 else None

    def forward(self, x: Tensor, guidance: Optional[Tensor]) -> Tensor:
        """
        Args:
            x (Tensor): (B, C, T, H, W) cost embedding of T classes.
            guidance (Tensor, optional): (B, G, H, W) projected visual features.

        Returns:
            Tensor: (B, C, T, H, W).
        """
        batch, channels, num_classes, height, width = x.shape
        x = x.permute(0, 2, 3, 4, 1).reshape(batch * num_classes, height, width, channels)
        if guidance is not None:
            guidance = self.guidance_norm(guidance.permute(0, 2, 3, 1))
            guidance = guidance.repeat_interleave(num_classes, dim=0)
        x = self.block2(self.block1(x, guidance), guidance)
        return x.view(batch, num_classes, height, width, channels).permute(0, 4, 1, 2, 3)
