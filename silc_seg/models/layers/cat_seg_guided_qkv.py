"""The query / key / value projections shared by CAT-Seg's guided attentions."""
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn


class GuidedQKV(BaseModule):
    """Multi-head projections whose queries and keys are computed from the tokens concatenated
    with guidance features, and whose values from the tokens alone (CAT-Seg, Cho et al., CVPR
    2024): the base of the spatial (window) and the class (linear) attention.

    Args:
        embed_dims (int): token channels.
        guidance_dims (int): guidance channels (0: no guidance).
        num_heads (int): attention heads.
        init_cfg (dict, optional): initialization config.
    """

    def __init__(self,
                 embed_dims: int,
                 guidance_dims: int,
                 num_heads: int,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims {embed_dims} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.q = nn.Linear(embed_dims + guidance_dims, embed_dims)
        self.k = nn.Linear(embed_dims + guidance_dims, embed_dims)
        self.v = nn.Linear(embed_dims, embed_dims)

    def project(self, x: Tensor, guidance: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
        """Queries, keys and values per head.

        Args:
            x (Tensor): (N, L, C) tokens.
            guidance (Tensor, optional): (N, L, G) guidance of the same tokens.

        Returns:
            tuple[Tensor]: queries, keys and values, each (N, L, num_heads, C / num_heads).
        """
        query_key_input = x if guidance is None else torch.cat([x, guidance], dim=-1)
        batch, length = x.shape[:2]

        def heads(t: Tensor) -> Tensor:
            return t.view(batch, length, self.num_heads, -1)

        return heads(self.q(query_key_input)), heads(self.k(query_key_input)), heads(self.v(x))
