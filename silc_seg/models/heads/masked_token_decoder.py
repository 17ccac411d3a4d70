from typing import List, Optional, Union

import torch
from mmengine.model import BaseModule
from torch import nn

from silc_seg.registry import MODELS
from ..layers.transformer import TransformerBlock


@MODELS.register_module()
class MaskedTokenDecoder(BaseModule):
    """Shallow transformer decoder of masked self-distillation and masked language modelling
    (MaskCLIP of Dong et al., CVPR 2023, Sec. 3: a small decoder on top of each encoder keeps
    the prediction task from conflicting with the contrastive representation).

    ``Linear(in_channels -> embed_dims)``, ``depth`` pre-norm transformer blocks with
    bidirectional attention, ``LayerNorm``, ``Linear(embed_dims -> out_channels)``. It adds no
    positional embedding: its input tokens already carry the encoder's (the mask token enters
    at the encoder input, where the positional embedding is added).

    Args:
        in_channels (int): Width of the encoder tokens.
        out_channels (int): Output width (the distillation head's input for images, the text
            tower's width for the tied MLM output layer).
        embed_dims (int): Decoder width. Defaults to 512.
        depth (int): Transformer blocks. Defaults to 2.
        num_heads (int): Attention heads. Defaults to 8.
        mlp_ratio (float): Defaults to 4.0.
        init_cfg (dict | list, optional): Defaults to truncated normal (std 0.02) for the linear
            layers, ones/zeros for the norms.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 embed_dims: int = 512,
                 depth: int = 2,
                 num_heads: int = 8,
                 mlp_ratio: float = 4.0,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if init_cfg is None:
            init_cfg = [
                dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
                dict(type='Constant', layer='LayerNorm', val=1., bias=0.),
            ]
        super().__init__(init_cfg=init_cfg)
        if depth < 1:
            raise ValueError(f'the decoder needs at least one block, got depth={depth}')
        self.input_proj = nn.Linear(in_channels, embed_dims)
        self.blocks = nn.ModuleList(
            [TransformerBlock(embed_dims, num_heads, mlp_ratio=mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dims)
        self.output_proj = nn.Linear(embed_dims, out_channels)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """
        Args:
            tokens (Tensor): ``(N, L, in_channels)`` encoder tokens.

        Returns:
            Tensor: ``(N, L, out_channels)``.
        """
        x = self.input_proj(tokens)
        for block in self.blocks:
            x = block(x)
        return self.output_proj(self.norm(x))
