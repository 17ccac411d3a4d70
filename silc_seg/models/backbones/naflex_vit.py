"""NaFlex image tower of SigLIP 2: native aspect ratio within a patch budget."""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from silc_seg.registry import MODELS
from .silc_vit import SILCVisionTransformer

POS_EMBED_INTERP_MODES = ('bicubic', 'bilinear')


def naflex_grid(height: int,
                width: int,
                patch_size: int,
                max_num_patches: int,
                eps: float = 1e-5) -> Tuple[int, int]:
    """The patch grid an image is resized to: the largest scale whose grid (sides rounded up
    to whole patches, at least one patch) holds at most ``max_num_patches`` patches, found by
    the bisection of big_vision's ``resize_to_sequence`` (``pp/proj/image_text/ops_naflex.py``,
    float32 as there).

    Returns:
        tuple[int, int]: ``(h, w)`` in patches.
    """
    if height < 1 or width < 1 or max_num_patches < 1:
        raise ValueError(f'need a non-empty image and patch budget, got {height}x{width}, '
                         f'max_num_patches={max_num_patches}')
    size = np.array([height, width], np.float32)
    p = np.float32(patch_size)

    def grid(ratio):
        target = np.maximum(p * np.ceil(size * np.float32(ratio) / p), p)
        return (target / p).astype(np.int64)

    low, high = np.float32(eps / 10), np.float32(100.0)
    while high - low >= eps:
        mid = np.float32((low + high) / 2)
        if grid(mid).prod() <= max_num_patches:
            low = mid
        else:
            high = mid
    h, w = grid(low)
    if h * w > max_num_patches:
        raise ValueError(f'a {height}x{width} image does not fit {max_num_patches} patches')
    return int(h), int(w)


def resize_to_grid(images: Tensor, grid: Tuple[int, int], patch_size: int) -> Tensor:
    """Resize ``(B, 3, H, W)`` images to ``grid`` patches: bilinear with antialiasing, as
    big_vision's ``tf.image.resize(..., antialias=True)``."""
    size = (grid[0] * patch_size, grid[1] * patch_size)
    if tuple(images.shape[-2:]) == size:
        return images
    return F.interpolate(images, size=size, mode='bilinear', align_corners=False, antialias=True)


def patchify(images: Tensor, patch_size: int) -> Tensor:
    """``(B, 3, h p, w p)`` -> ``(B, h w, p p 3)`` patches, row-major, each flattened as
    (row, column, channel) like big_vision's ``patchify`` and timm's NaFlex loader."""
    batch, channels, height, width = images.shape
    h, w = height // patch_size, width // patch_size
    patches = images.reshape(batch, channels, h, patch_size, w, patch_size)
    return patches.permute(0, 2, 4, 3, 5, 1).reshape(batch, h * w, -1)


@MODELS.register_module()
class NaFlexVisionTransformer(SILCVisionTransformer):
    """SigLIP 2 NaFlex image tower (inference): every image keeps its aspect ratio, resized to
    the largest patch grid within a budget; the learned 2-D positional table is resized to each
    image's grid; a batch of different grids is packed into padded patch sequences whose
    padding is masked out of every attention and of the pooling.

    Same parameters as :class:`SILCVisionTransformer` (the NaFlex linear patch embedding is its
    conv patch embedding, see :func:`~silc_seg.converters.convert_siglip2`), so it serves as
    MMSeg backbone and dense tower too: there any input size is taken as it is, with the table
    resized to its grid.

    Args:
        img_size (int | tuple): side of the stored positional table times the patch size
            (SigLIP 2 NaFlex: 16 x 16 positions of 16 px). Defaults to 256.
        max_num_patches (int): patch budget of :meth:`pack_images` (SigLIP 2 NaFlex is
            evaluated at 256 to 1024). Defaults to 256.
        pos_embed_interp (str): how the table is resized, always antialiased: ``'bilinear'``
            (big_vision ``naflex_vit._pos_emb_resize``; timm >= 1.0.31 ``naflexvit_*_siglip``,
            whose outputs this tower reproduces) or ``'bicubic'`` (timm's earlier default).
            Defaults to ``'bilinear'``.
        **kwargs: the other arguments of :class:`SILCVisionTransformer`.
    """

    def __init__(self,
                 img_size=256,
                 max_num_patches: int = 256,
                 pos_embed_interp: str = 'bilinear',
                 **kwargs):
        super().__init__(img_size=img_size, **kwargs)
        if pos_embed_interp not in POS_EMBED_INTERP_MODES:
            raise ValueError(f'unknown pos_embed_interp {pos_embed_interp!r}; choose from '
                             f'{POS_EMBED_INTERP_MODES}')
        if max_num_patches < 1:
            raise ValueError(f'max_num_patches must be positive, got {max_num_patches}')
        self.max_num_patches = max_num_patches
        self.pos_embed_interp = pos_embed_interp

    def resized_pos_embed(self, hw: Tuple[int, int]) -> Tensor:
        """The positional embedding for a ``hw`` patch grid: the 2-D table resized with
        antialiasing (``pos_embed_interp``); unchanged at the stored grid.

        Returns:
            Tensor: ``(1, num_prefix_tokens + h * w, width)``.
        """
        hw = tuple(int(side) for side in hw)
        if hw == tuple(self.grid_size):
            return self.pos_embed
        prefix = self.pos_embed[:, :self.num_prefix_tokens]
        table = self.pos_embed[:, self.num_prefix_tokens:].reshape(1, *self.grid_size, -1)
        table = F.interpolate(
            table.permute(0, 3, 1, 2).float(),
            size=hw,
            mode=self.pos_embed_interp,
            align_corners=False,
            antialias=True)
        table = table.flatten(2).transpose(1, 2).to(self.pos_embed.dtype)
        return torch.cat([prefix, table], dim=1)

    def pack_images(self,
                    images: Sequence[Tensor],
                    max_num_patches: Optional[int] = None) -> Dict[str, Tensor]:
        """NaFlex inputs of differently sized images: each resized to its
        :func:`naflex_grid`, patchified and zero-padded to ``max_num_patches``.

        Args:
            images (Sequence[Tensor]): ``(3, H_i, W_i)`` normalized images.
            max_num_patches (int, optional): the budget; defaults to ``max_num_patches``.

        Returns:
            dict: ``patches`` ``(B, N, p * p * 3)``, ``patch_coord`` ``(B, N, 2)`` (row,
            column) and ``patch_valid`` ``(B, N)`` bool.
        """
        budget = max_num_patches or self.max_num_patches
        p = self.patch_size
        patches, coords, valid = [], [], []
        for image in images:
            if image.dim() != 3 or image.shape[0] != 3:
                raise ValueError(f'expected (3, H, W) images, got shape {tuple(image.shape)}')
            grid = naflex_grid(*image.shape[-2:], p, budget)
            flat = patchify(resize_to_grid(image[None], grid, p), p)[0]
            rows, cols = torch.meshgrid(
                torch.arange(grid[0]), torch.arange(grid[1]), indexing='ij')
            coord = torch.stack([rows.flatten(), cols.flatten()], dim=1).to(image.device)
            pad = budget - flat.shape[0]
            patches.append(F.pad(flat, (0, 0, 0, pad)))
            coords.append(F.pad(coord, (0, 0, 0, pad)))
            valid.append(torch.arange(budget, device=image.device) < flat.shape[0])
        return dict(
            patches=torch.stack(patches),
            patch_coord=torch.stack(coords),
            patch_valid=torch.stack(valid))

    def embed_patches(self, patches: Tensor, patch_coord: Tensor, patch_valid: Tensor) -> Tensor:
        """Patch and positional embeddings of packed NaFlex inputs (see :meth:`pack_images`);
        each image's table is resized to its grid ``max(coord) + 1``.

        Returns:
            Tensor: ``(B, num_prefix_tokens + N, width)`` tokens.
        """
        if patches.dim() != 3 or patch_coord.shape != patches.shape[:2] + (2, ) or \
                patch_valid.shape != patches.shape[:2]:
            raise ValueError('expected patches (B, N, p*p*3), patch_coord (B, N, 2) and '
                             f'patch_valid (B, N); got {tuple(patches.shape)}, '
                             f'{tuple(patch_coord.shape)}, {tuple(patch_valid.shape)}')
        conv = self.patch_embed.projection
        x = F.linear(patches, conv.weight.permute(0, 2, 3, 1).flatten(1), conv.bias)
        grids = (patch_coord.amax(dim=1) + 1).tolist()
        tables = {}
        positions = []
        for grid, coord, valid in zip(grids, patch_coord, patch_valid):
            grid = tuple(grid)
            if grid not in tables:
                tables[grid] = self.resized_pos_embed(grid)[0, self.num_prefix_tokens:]
            index = coord[:, 0] * grid[1] + coord[:, 1]
            positions.append(tables[grid][index] * valid[:, None].to(x.dtype))
        x = x + torch.stack(positions).to(x.dtype)
        if self.cls_token is not None:
            prefix = self.cls_token + self.pos_embed[:, :self.num_prefix_tokens]
            x = torch.cat([prefix.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)
        return self.ln_pre(x)

    def _valid_tokens(self, patch_valid: Tensor) -> Tensor:
        prefix = patch_valid.new_ones(patch_valid.shape[0], self.num_prefix_tokens)
        return torch.cat([prefix, patch_valid.bool()], dim=1)

    def forward_naflex_tokens(self, patches: Tensor, patch_coord: Tensor,
                              patch_valid: Tensor) -> Tensor:
        """Tokens after the last block (before ``ln_post``) of packed NaFlex inputs; padding
        tokens are masked out of every attention (their own outputs are meaningless)."""
        x = self.embed_patches(patches, patch_coord, patch_valid)
        valid = self._valid_tokens(patch_valid)
        mask = torch.zeros(
            valid.shape[0], 1, valid.shape[1], valid.shape[1], dtype=x.dtype, device=x.device)
        mask.masked_fill_(~(valid[:, None, :, None] & valid[:, None, None, :]),
                          torch.finfo(x.dtype).min)
        for block in self.blocks:
            x = block(x, attn_mask=mask)
        return x

    def pool_naflex(self, x: Tensor, patch_valid: Tensor) -> Tensor:
        """:meth:`pool` over the valid patch tokens only."""
        x = self.ln_post(x)
        patches, valid = x[:, self.num_prefix_tokens:], patch_valid.bool()
        if self.pool_type == 'cls':
            pooled = x[:, 0]
        elif self.pool_type == 'gap':
            weights = valid.to(x.dtype)[..., None]
            pooled = (patches * weights).sum(1) / weights.sum(1).clamp(min=1)
        else:
            pool = self.attn_pool
            batch, length, dim = patches.shape
            q = pool.q(pool.latent.expand(batch, -1, -1))
            q = q.reshape(batch, 1, pool.num_heads, pool.head_dim).transpose(1, 2)
            k, v = pool.kv(patches).reshape(batch, length, 2, pool.num_heads,
                                            pool.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=valid[:, None, None, :])
            out = pool.proj(out.transpose(1, 2).reshape(batch, 1, dim))
            pooled = (out + pool.mlp(pool.norm(out)))[:, 0]
        return self.proj(pooled)

    def encode_naflex(self, patches: Tensor, patch_coord: Tensor, patch_valid: Tensor) -> Tensor:
        """Embeddings ``(B, output_dim)`` of packed NaFlex inputs (see :meth:`pack_images`)."""
        return self.pool_naflex(
            self.forward_naflex_tokens(patches, patch_coord, patch_valid), patch_valid)

    def encode_images(self,
                      images: Sequence[Tensor],
                      max_num_patches: Optional[int] = None) -> Tensor:
        """Embeddings ``(B, output_dim)`` of differently sized ``(3, H_i, W_i)`` images, each
        at its native aspect ratio within the patch budget."""
        return self.encode_naflex(**self.pack_images(images, max_num_patches))
