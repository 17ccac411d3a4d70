"""DINO / DINOv2 ViT feature towers (vision foundation models, e.g. ProxyCLIP's proxy backbone).

The architecture is timm's (``vit_base_patch8_224.dino``, ``vit_base_patch14_dinov2``,
``vit_base_patch14_reg4_dinov2``, ...), built with random weights; only the positional embedding
is resized as the official hub models do (facebookresearch/dino ``vision_transformer.py``
``interpolate_pos_encoding``, facebookresearch/dinov2 ``dinov2/models/vision_transformer.py``),
so that converted public checkpoints (``silc_seg.converters.dino``) give their features.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from silc_seg.registry import MODELS


@MODELS.register_module()
class DINOViT(BaseModule):
    """A timm ViT that returns the normalized patch tokens of its last block as a map.

    Args:
        arch (str): timm model name (architecture only, no weights are downloaded), e.g.
            ``'vit_base_patch8_224.dino'`` (DINO ViT-B/8), ``'vit_base_patch16_224.dino'``,
            ``'vit_base_patch14_dinov2'`` or ``'vit_base_patch14_reg4_dinov2'`` (with registers).
        pos_embed_offset (float): the hub models' ``interpolate_offset``: the stored grid is
            resized with bicubic scale factors ``(grid + offset) / stored grid``; 0 resizes to
            the grid size. DINO and DINOv2: 0.1; DINOv2 with registers: 0.
        pos_embed_antialias (bool): antialiased bicubic resize (DINOv2 with registers: True).
        timm_kwargs (dict, optional): overrides of the timm architecture (``embed_dim``,
            ``depth``, ``num_heads``, ``img_size`` ...), e.g. for tiny test towers.
        init_cfg (dict, optional): e.g. ``dict(type='Pretrained', checkpoint=..., prefix=...)``
            with weights converted by ``tools/model_converters/dino2silc.py``.
    """

    def __init__(self,
                 arch: str = 'vit_base_patch8_224.dino',
                 pos_embed_offset: float = 0.1,
                 pos_embed_antialias: bool = False,
                 timm_kwargs: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if pos_embed_offset < 0:
            raise ValueError(f'pos_embed_offset must be >= 0, got {pos_embed_offset}')
        try:
            import timm
        except ImportError as err:  # an optional requirement (requirements/optional.txt)
            raise ImportError('DINOViT builds its architecture with timm: pip install timm') \
                from err
        self.arch = arch
        self.vit = timm.create_model(
            arch, pretrained=False, num_classes=0, dynamic_img_size=True, **(timm_kwargs or {}))
        if getattr(self.vit, 'pos_embed', None) is None:
            raise ValueError(f'{arch!r} has no learned absolute position embedding')
        self.pos_embed_offset = pos_embed_offset
        self.pos_embed_antialias = pos_embed_antialias
        self.patch_size = self.vit.patch_embed.patch_size[0]
        self.embed_dim = self.vit.embed_dim
        self.num_prefix_tokens = self.vit.num_prefix_tokens
        # Prefix tokens that carry a position embedding (the class token unless timm's
        # ``no_embed_class``, where it is folded into ``cls_token`` by the converter).
        self._embedded_prefix = 0 if self.vit.no_embed_class else self.num_prefix_tokens
        grid = self.vit.pos_embed.shape[1] - self._embedded_prefix
        self.stored_grid = int(math.isqrt(grid))
        if self.stored_grid**2 != grid:
            raise ValueError(f'{arch!r}: position embedding of {grid} patches is not square')

    def resized_pos_embed(self, image_hw: Tuple[int, int]) -> Tensor:
        """``(1, h * w, C)`` patch position embedding for an ``image_hw`` input, computed as the
        hub models do (in fp32; kept as stored when the patch count matches and the image is
        square)."""
        height, width = image_hw
        h, w = height // self.patch_size, width // self.patch_size
        grid = self.vit.pos_embed[:, self._embedded_prefix:].float()
        size = self.stored_grid
        if h * w == size * size and height == width:
            return grid
        grid = grid.reshape(1, size, size, -1).permute(0, 3, 1, 2)
        if self.pos_embed_offset:
            kwargs = dict(
                scale_factor=((h + self.pos_embed_offset) / size,
                              (w + self.pos_embed_offset) / size))
        else:
            kwargs = dict(size=(h, w))
        grid = F.interpolate(grid, mode='bicubic', antialias=self.pos_embed_antialias, **kwargs)
        if tuple(grid.shape[-2:]) != (h, w):
            raise RuntimeError(f'position embedding resized to {tuple(grid.shape[-2:])}, '
                               f'not {(h, w)}')
        return grid.flatten(2).transpose(1, 2)

    def _tokens(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        """Prefix and patch tokens with their position embeddings (before the blocks), and the
        patch grid ``(h, w)``; rows / columns that do not fill a patch are left out."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f'expected (B, 3, H, W) images, got shape {tuple(x.shape)}')
        vit = self.vit
        image_hw = x.shape[-2:]
        p = self.patch_size
        if image_hw[0] < p or image_hw[1] < p:
            raise ValueError(f'a {tuple(image_hw)} input holds no whole {p}px patch')
        patches = vit.patch_embed(x[..., :image_hw[0] // p * p, :image_hw[1] // p * p])
        batch, h, w, dim = patches.shape
        patches = patches.reshape(batch, h * w, dim)
        pos = self.resized_pos_embed(image_hw).to(patches.dtype)
        prefix = [
            token.expand(batch, -1, -1) for token in (vit.cls_token, vit.reg_token)
            if token is not None
        ]
        prefix = torch.cat(prefix, dim=1) if prefix else patches[:, :0]
        if self._embedded_prefix:
            prefix = prefix + vit.pos_embed[:, :self._embedded_prefix]
        tokens = torch.cat([prefix.to(patches.dtype), patches + pos], dim=1)
        return vit.norm_pre(vit.patch_drop(vit.pos_drop(tokens))), (h, w)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 3, H, W)`` images (normalized for the VFM) -> ``(B, C, H // p, W // p)``
        final-norm patch tokens of the last block (rows / columns that do not fill a patch
        are left out, as the patch convolution does)."""
        tokens, (h, w) = self._tokens(x)
        tokens = self.vit.norm(self.vit.blocks(tokens))
        return tokens[:, self.num_prefix_tokens:].transpose(1,
                                                            2).reshape(tokens.shape[0], -1, h, w)

    def forward_last_qkv(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tuple[int, int]]:
        """The queries, keys and values of the last block's attention (its ``norm1`` input
        through ``qkv``, per head, as the official ``Attention.forward`` returns them).

        Args:
            x (Tensor): ``(B, 3, H, W)`` images normalized for the VFM.

        Returns:
            tuple: ``q, k, v``, each ``(B, heads, prefix + h * w, head_dim)`` (prefix tokens
            first), and the patch grid ``(h, w)``.
        """
        tokens, hw = self._tokens(x)
        for block in self.vit.blocks[:-1]:
            tokens = block(tokens)
        attn = self.vit.blocks[-1].attn
        batch, length, _ = tokens.shape
        qkv = attn.qkv(self.vit.blocks[-1].norm1(tokens))
        q, k, v = qkv.reshape(batch, length, 3, attn.num_heads, -1).permute(2, 0, 3, 1,
                                                                            4).unbind(0)
        return attn.q_norm(q), attn.k_norm(k), v, hw
