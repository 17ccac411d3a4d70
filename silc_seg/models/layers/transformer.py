"""Pre-norm transformer blocks shared by the image and text towers.

Parameter names follow ``docs/design.md`` (``ln_1``, ``attn.qkv``, ``attn.proj``, ``ls_1``,
``ln_2``, ``mlp.fc1``, ``mlp.fc2``, ``ls_2``) so that checkpoint converters and the dense
attention variants (:mod:`silc_seg.models.layers.dense_attention`) can address them directly.
"""
from functools import partial
from typing import Optional

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from torch import Tensor, nn


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``, the GELU approximation OpenAI CLIP was trained with."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {
    'gelu': nn.GELU,
    'gelu_tanh': partial(nn.GELU, approximate='tanh'),
    'quick_gelu': QuickGELU,
}


def build_activation(act: str) -> nn.Module:
    """Build an activation by name (``gelu``, ``gelu_tanh`` or ``quick_gelu``)."""
    if act not in ACTIVATIONS:
        raise ValueError(f'unknown activation {act!r}; choose from {sorted(ACTIVATIONS)}')
    return ACTIVATIONS[act]()


class LayerScale(nn.Module):
    """Per-channel learnable scaling of a residual branch (CaiT / DINOv2).

    Args:
        dim (int): channels.
        init_value (float): initial scale.
    """

    def __init__(self, dim: int, init_value: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(init_value * torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """Two-layer feed-forward network ``fc2(act(fc1(x)))``.

    Args:
        in_features (int): input and output channels.
        hidden_features (int): hidden channels.
        act (str): activation name, see :func:`build_activation`.
        out_features (int, optional): output channels; ``in_features`` by default.
    """

    def __init__(self,
                 in_features: int,
                 hidden_features: int,
                 act: str = 'gelu',
                 out_features: Optional[int] = None):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = build_activation(act)
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head self-attention with a fused query/key/value projection, computed by
    :func:`torch.nn.functional.scaled_dot_product_attention`.

    Args:
        dim (int): token channels.
        num_heads (int): attention heads; must divide ``dim``.
        qkv_bias (bool): whether ``qkv`` has a bias.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f'width {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def split_qkv(self, x: Tensor):
        """Project ``(B, N, D)`` tokens to per-head queries, keys and values.

        Returns:
            tuple[Tensor]: ``q, k, v``, each ``(B, num_heads, N, head_dim)``.
        """
        batch, length, _ = x.shape
        qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads, self.head_dim)
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)

    def merge_heads(self, x: Tensor) -> Tensor:
        """``(B, num_heads, N, head_dim)`` -> output projection of ``(B, N, D)``."""
        return self.proj(x.transpose(1, 2).flatten(2))

    def forward(self,
                x: Tensor,
                attn_mask: Optional[Tensor] = None,
                is_causal: bool = False) -> Tensor:
        q, k, v = self.split_qkv(x)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)
        return self.merge_heads(out)


class TransformerBlock(nn.Module):
    """Pre-norm transformer block:
    ``x + ls_1(attn(ln_1(x)))`` then ``x + ls_2(mlp(ln_2(x)))``.

    Args:
        dim (int): token channels.
        num_heads (int): attention heads.
        mlp_ratio (float): hidden channels of the MLP relative to ``dim``.
        act (str): MLP activation name.
        qkv_bias (bool): whether the qkv projection has a bias.
        norm_eps (float): LayerNorm epsilon.
        layer_scale_init (float, optional): initial LayerScale value; None disables LayerScale.
        drop_path_rate (float): stochastic depth rate of both residual branches.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 mlp_ratio: float = 4.0,
                 act: str = 'gelu',
                 qkv_bias: bool = True,
                 norm_eps: float = 1e-5,
                 layer_scale_init: Optional[float] = None,
                 drop_path_rate: float = 0.):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.ls_1 = LayerScale(dim, layer_scale_init) if layer_scale_init else nn.Identity()
        self.ln_2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act=act)
        self.ls_2 = LayerScale(dim, layer_scale_init) if layer_scale_init else nn.Identity()
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self,
                x: Tensor,
                attn_mask: Optional[Tensor] = None,
                is_causal: bool = False) -> Tensor:
        x = x + self.drop_path(self.ls_1(self.attn(self.ln_1(x), attn_mask, is_causal)))
        return x + self.drop_path(self.ls_2(self.mlp(self.ln_2(x))))
