from typing import Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch.nn.utils.parametrizations import weight_norm

from silc_seg.registry import MODELS


@MODELS.register_module()
class DistillationHead(BaseModule):
    """Projection head of the self-distillation branch (DINO head, Caron et al., 2021).

    An MLP ``in_channels -> hidden_channels (-> hidden_channels ...) -> bottleneck_channels``
    with GELU, an L2 normalization, then a bias-free weight-normalized linear layer to
    ``out_channels`` prototypes. With ``norm_last_layer`` the weight-norm gain is frozen at 1, so
    every prototype is a unit vector and the logits are cosine similarities (DINO's default,
    which stabilizes training).

    Args:
        in_channels (int): Input width ``J`` (the joint image-text embedding dimension).
        out_channels (int): Number of prototypes ``K``. Defaults to 65536.
        hidden_channels (int): Hidden width. Defaults to 2048.
        bottleneck_channels (int): Width before the prototypes. Defaults to 256.
        num_layers (int): Linear layers of the MLP (1 maps straight to the bottleneck).
            Defaults to 3, as DINO.
        norm_last_layer (bool): Freeze the prototype norms at 1. Defaults to True.
        init_cfg (dict | list, optional): Defaults to truncated normal (std 0.02) for the MLP
            (the weight-normalized prototype layer is a ``ParametrizedLinear`` and keeps
            PyTorch's default init, as in DINO).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 65536,
        hidden_channels: int = 2048,
        bottleneck_channels: int = 256,
        num_layers: int = 3,
        norm_last_layer: bool = True,
        init_cfg: Optional[Union[dict, list]] = dict(
            type='TruncNormal', layer='Linear', std=0.02, bias=0.0)
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_layers < 1:
            raise ValueError(f'num_layers must be >= 1, got {num_layers}')
        widths = [in_channels] + [hidden_channels] * (num_layers - 1) + [bottleneck_channels]
        layers = []
        for i, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(width_in, width_out))
            if i < num_layers - 1:
                layers.append(nn.GELU())
        self.mlp = nn.Sequential(*layers)
        self.last_layer = weight_norm(nn.Linear(bottleneck_channels, out_channels, bias=False))
        self.norm_last_layer = norm_last_layer
        self._reset_gain()

    def _reset_gain(self) -> None:
        gain = self.last_layer.parametrizations.weight.original0
        with torch.no_grad():
            gain.fill_(1.0)
        gain.requires_grad_(not self.norm_last_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x (Tensor): ``(N, in_channels)`` embeddings.

        Returns:
            Tensor: ``(N, out_channels)`` prototype logits.
        """
        x = F.normalize(self.mlp(x), dim=-1)
        return self.last_layer(x)
