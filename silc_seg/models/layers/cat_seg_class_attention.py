"""Class cost aggregation of CAT-Seg: linear attention across classes, guided by text features.

At every (pooled) position the cost embeddings of all classes attend to each other, so the
aggregation is permutation-invariant over classes and handles any vocabulary size. Linear
attention ("Transformers are RNNs", Katharopoulos et al., 2020) keeps it linear in the number of
classes. The class axis is padded with learnable slots to a fixed length (or, upstream, reduced
to it), as CAT-Seg does, so the attention normalization sees the same number of tokens for every
vocabulary.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from .cat_seg_guided_qkv import GuidedQKV


def linear_attention(queries: Tensor, keys: Tensor, values: Tensor, eps: float = 1e-6) -> Tensor:
    """Multi-head linear attention with the ``elu(x) + 1`` feature map.

    Args:
        queries (Tensor): (N, L, H, D).
        keys (Tensor): (N, S, H, D).
        values (Tensor): (N, S, H, V).
        eps (float): added to the normalizer.

    Returns:
        Tensor: (N, L, H, V).
    """
    queries, keys = F.elu(queries) + 1, F.elu(keys) + 1
    length = values.shape[1]
    # Dividing by the length before the sums and multiplying after keeps fp16 in range.
    key_values = torch.einsum('nshd,nshv->nhdv', keys, values / length)
    normalizer = 1 / (torch.einsum('nlhd,nhd->nlh', queries, keys.sum(dim=1)) + eps)
    return torch.einsum('nlhd,nhdv,nlh->nlhv', queries, key_values, normalizer) * length


class GuidedLinearAttention(GuidedQKV):
    """Linear attention whose queries and keys also see guidance features. Arguments as
    :class:`GuidedQKV`."""

    def forward(self, x: Tensor, guidance: Optional[Tensor]) -> Tensor:
        """(N, L, C) tokens and (N, L, G) guidance -> (N, L, C)."""
        return linear_attention(*self.project(x, guidance)).reshape(x.shape)


class ClassAggregationLayer(BaseModule):
    """Pre-norm transformer layer over the class axis of a cost embedding.

    The embedding is average-pooled spatially (``pooling_size``) to save computation, padded along
    the class axis with learnable tokens up to ``num_class_slots``, attended, passed through an
    MLP, bilinearly upsampled back and added to the input (residual).

    Args:
        embed_dims (int): cost-embedding channels.
        guidance_dims (int): projected text guidance channels (0: no guidance).
        num_heads (int): attention heads.
        pooling_size (tuple[int, int]): spatial average-pooling kernel.
        num_class_slots (int): class-axis length after padding (0: no padding).
        init_cfg (dict, optional): initialization config.
    """

    def __init__(self,
                 embed_dims: int,
                 guidance_dims: int,
                 num_heads: int = 4,
                 pooling_size: Tuple[int, int] = (2, 2),
                 num_class_slots: int = 256,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.pool = nn.AvgPool2d(pooling_size)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attention = GuidedLinearAttention(embed_dims, guidance_dims, num_heads)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dims, embed_dims * 4), nn.ReLU(),
            nn.Linear(embed_dims * 4, embed_dims))
        self.num_class_slots = num_class_slots
        self.padding_token = nn.Parameter(torch.zeros(embed_dims)) if num_class_slots else None
        self.padding_guidance = (
            nn.Parameter(torch.zeros(guidance_dims))
            if num_class_slots and guidance_dims > 0 else None)

    def forward(self, x: Tensor, guidance: Optional[Tensor]) -> Tensor:
        """
        Args:
            x (Tensor): (B, C, T, H, W) cost embedding of T classes.
            guidance (Tensor, optional): (B, T, G) projected text features.

        Returns:
            Tensor: (B, C, T, H, W).
        """
        batch, channels, num_classes, height, width = x.shape
        if self.num_class_slots and num_classes > self.num_class_slots:
            raise ValueError(f'{num_classes} classes exceed num_class_slots='
                             f'{self.num_class_slots}; reduce them to the top classes first')
        pooled = self.pool(x.transpose(1, 2).flatten(0, 1))  # (B * T, C, h, w)
        pooled_h, pooled_w = pooled.shape[-2:]
        tokens = pooled.view(batch, num_classes, channels, pooled_h * pooled_w)
        tokens = tokens.permute(0, 3, 1, 2).flatten(0, 1)  # (B * h * w, T, C)
        num_padding = self.num_class_slots - num_classes if self.num_class_slots else 0
        if num_padding:
            tokens = torch.cat(
                [tokens, self.padding_token.expand(tokens.shape[0], num_padding, -1)], dim=1)
        if guidance is not None:
            if num_padding and self.padding_guidance is not None:
                guidance = torch.cat(
                    [guidance, self.padding_guidance.expand(batch, num_padding, -1)], dim=1)
            guidance = guidance.repeat_interleave(pooled_h * pooled_w, dim=0)
        tokens = tokens + self.attention(self.norm1(tokens), guidance)
        tokens = tokens + self.mlp(self.norm2(tokens))
        tokens = tokens[:, :num_classes].view(batch, pooled_h, pooled_w, num_classes, channels)
        tokens = tokens.permute(0, 3, 4, 1, 2).flatten(0, 1)  # (B * T, C, h, w)
        tokens = F.interpolate(tokens, size=(height, width), mode='bilinear', align_corners=True)
        return x + tokens.view(batch, num_classes, channels, height, width).transpose(1, 2)
