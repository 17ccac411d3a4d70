"""Multihead attention pooling with a learned probe (SigLIP's MAP head)."""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .transformer import Mlp


class AttentionPoolLatent(nn.Module):
    """Pool tokens by cross-attention from one learned latent query, then a residual MLP, as
    big_vision's ``MAPHead`` and timm's/open_clip's ``AttentionPoolLatent`` (same parameter
    names as timm: ``latent``, ``q``, ``kv``, ``proj``, ``norm``, ``mlp``).

    Args:
        dim (int): token channels.
        num_heads (int): attention heads.
        mlp_ratio (float): hidden channels of the MLP relative to ``dim``.
        act (str): MLP activation name.
        norm_eps (float): LayerNorm epsilon.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 mlp_ratio: float = 4.0,
                 act: str = 'gelu',
                 norm_eps: float = 1e-6):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f'width {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.latent = nn.Parameter(torch.zeros(1, 1, dim))
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act=act)

    def forward(self, x: Tensor) -> Tensor:
        """Pool ``(B, N, D)`` tokens to ``(B, D)``."""
        batch, length, dim = x.shape
        q = self.q(self.latent.expand(batch, -1, -1))
        q = q.reshape(batch, 1, self.num_heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(x).reshape(batch, length, 2, self.num_heads,
                                  self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        pooled = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, 1, dim)
        pooled = self.proj(pooled)
        pooled = pooled + self.mlp(self.norm(pooled))
        return pooled[:, 0]

    def forward_dense(self, x: Tensor) -> Tensor:
        """Per-token path of the pooling (as the training-free MaskCLIP of Zhou et al.): each
        token is pooled as if the probe attended to it alone, i.e. its value projection goes
        through ``proj`` and the residual MLP. ``(B, N, D)`` -> ``(B, N, D)``."""
        dim = x.shape[-1]
        values = F.linear(x, self.kv.weight[dim:], self.kv.bias[dim:])
        tokens = self.proj(values)
        return tokens + self.mlp(self.norm(tokens))
