"""ProxyCLIP (Lan et al., ECCV 2024): proxy attention from a vision foundation model (VFM).

The equations follow mc-lan/ProxyCLIP ``proxyclip_segmentor.py`` (``forward_feature``) and
``open_clip/transformer.py`` (``VisionTransformer.forward``, ``custom_attn``):

1. the window, CLIP-normalized, is re-normalized with the VFM's statistics and goes through the
   VFM (DINO / DINOv2): its final-norm patch tokens ``F`` on the VFM grid ``(H / p_v, W / p_v)``;
2. ``S = F^T F`` of the L2-normalized tokens, ``S' = gamma (S - beta mean(S))`` with the mean
   over all entries of the window, entries ``S' < 0`` masked, ``A = softmax(S')`` (all heads);
3. the values of CLIP's last block (``ln_1``, patch tokens, per head) are resized bilinearly
   from the CLIP grid to the VFM grid and the output is ``out_proj(A v)``: no residual, no FFN,
   no class token; then ``ln_post`` and the projection. The dense features live on the VFM grid.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor, nn

from silc_seg.registry import MODELS
from .dense_attention import _layer_scale

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def proxy_attention(features: Tensor, beta: float, gamma: float) -> Tuple[Tensor, int]:
    """ProxyCLIP's attention from ``(B, C, h, w)`` VFM features.

    A query whose every key is masked (only when ``beta mean(S) > 1``, so that even its own
    similarity 1 falls below the threshold; the reference then gives NaN) attends to itself.

    Returns:
        tuple[Tensor, int]: ``(B, h * w, h * w)`` row-stochastic attention and the number of
        queries whose keys were all masked.
    """
    tokens = F.normalize(features.flatten(2), dim=1)
    similarity = tokens.transpose(1, 2) @ tokens
    mean = similarity.mean(dim=(1, 2), keepdim=True)
    logits = (similarity - mean * beta) * gamma
    masked = logits < 0
    empty = masked.all(dim=-1, keepdim=True)
    if empty.any():
        eye = torch.eye(logits.shape[-1], dtype=torch.bool, device=logits.device)
        masked = torch.where(empty, ~eye, masked)
    return logits.masked_fill(masked, float('-inf')).softmax(dim=-1), int(empty.sum())


@MODELS.register_module()
class ProxyCLIPDense(nn.Module):
    """ProxyCLIP's dense forward of a ViT image tower (see the module docstring).

    Defaults are ProxyCLIP's (``proxyclip_segmentor.py``, ``configs/base_config.py``:
    DINO ViT-B/8, beta 1.2, gamma 3.0).

    Args:
        vfm (dict): the VFM tower config, e.g. ``dict(type='DINOViT',
            arch='vit_base_patch8_224.dino')``; ``vfm(images) -> (B, C, h, w)``.
        beta (float): shift of the similarity, in units of its mean.
        gamma (float): scale of the shifted similarity.
        clip_mean (Sequence[float]): the image normalization the inputs come with (0-255 RGB,
            the segmentor's data preprocessor).
        clip_std (Sequence[float]): its std.
        vfm_mean (Sequence[float]): the VFM's normalization (ImageNet's).
        vfm_std (Sequence[float]): its std.
    """

    def __init__(self,
                 vfm: dict,
                 beta: float = 1.2,
                 gamma: float = 3.0,
                 clip_mean: Sequence[float] = (122.7709383, 116.7460125, 104.09373615),
                 clip_std: Sequence[float] = (68.5005327, 66.6321579, 70.32316305),
                 vfm_mean: Sequence[float] = IMAGENET_MEAN,
                 vfm_std: Sequence[float] = IMAGENET_STD):
        super().__init__()
        if gamma <= 0:
            raise ValueError(f'gamma must be positive, got {gamma}')
        self.vfm = MODELS.build(vfm)
        self.beta = beta
        self.gamma = gamma
        for name, value in (('clip_mean', clip_mean), ('clip_std', clip_std),
                            ('vfm_mean', vfm_mean), ('vfm_std', vfm_std)):
            if len(value) != 3:
                raise ValueError(f'{name} needs 3 channels, got {value}')
            self.register_buffer(
                name, torch.tensor(value, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self._warned_empty = False

    def vfm_inputs(self, images: Tensor) -> Tensor:
        """CLIP-normalized images -> the VFM's normalization."""
        pixels = images * self.clip_std.to(images.dtype) + self.clip_mean.to(images.dtype)
        return (pixels - self.vfm_mean.to(images.dtype)) / self.vfm_std.to(images.dtype)

    def forward(self,
                tower: nn.Module,
                images: Tensor,
                text_embeddings: Optional[Tensor] = None) -> Tensor:
        """``(B, 3, H, W)`` CLIP-normalized images -> ``(B, C, H / p_v, W / p_v)`` projected
        embeddings on the VFM grid (``text_embeddings`` is unused)."""
        features = self.vfm(self.vfm_inputs(images))
        grid = features.shape[-2:]
        if min(grid) < 1:
            raise ValueError(f'a {tuple(images.shape[-2:])} window holds no whole '
                             f'{self.vfm.patch_size}px VFM patch')
        # The CLIP patch convolution leaves out rows / columns that do not fill a patch.
        patch = tower.patch_size
        height, width = images.shape[-2:]
        if height < patch or width < patch:
            raise ValueError(f'a {height}x{width} window holds no whole {patch}px CLIP patch')
        x, hw = tower.embed(images[..., :height - height % patch, :width - width % patch])
        for block in tower.blocks[:-1]:
            x = block(x)
        last = tower.blocks[-1]
        _, _, v = last.attn.split_qkv(last.ln_1(x))
        batch, heads, _, head_dim = v.shape
        v = v[:, :, tower.num_prefix_tokens:].transpose(-2,
                                                        -1).reshape(batch * heads, head_dim, *hw)
        v = F.interpolate(v, size=grid, mode='bilinear', align_corners=False)
        v = v.reshape(batch, heads, head_dim, -1).transpose(-2, -1)
        attention, empty = proxy_attention(features.float(), self.beta, self.gamma)
        if empty and not self._warned_empty:
            print_log(
                f'ProxyCLIP: {empty} VFM patch(es) had every key masked (beta x mean '
                'similarity > 1); they attend to themselves only (warned once)',
                logger='current',
                level=30)
            self._warned_empty = True
        out = last.attn.merge_heads(attention.unsqueeze(1).to(v.dtype) @ v)
        dense = tower.project_patches(_layer_scale(last, 'ls_1', out))
        return dense.transpose(1, 2).reshape(batch, -1, *grid)
