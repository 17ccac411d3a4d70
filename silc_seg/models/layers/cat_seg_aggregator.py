"""CAT-Seg cost aggregation (Cho et al., "CAT-Seg: Cost Aggregation for Open-Vocabulary
Semantic Segmentation", CVPR 2024): cost volume -> embedding -> (spatial, class) aggregation
layers -> guided upsampling decoder -> one logit map per class."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from .cat_seg_class_attention import ClassAggregationLayer
from .cat_seg_swin_block import GuidedSwinBlockPair
from .cat_seg_upsampler import GuidedUpsampleBlock


def cosine_cost_volume(image_features: Tensor, text_features: Tensor) -> Tensor:
    """Cosine similarity of every patch with every class and prompt template.

    Args:
        image_features (Tensor): (B, D, h, w) dense image embeddings.
        text_features (Tensor): (B, T, P, D) or (T, P, D) embeddings of T classes x P templates.

    Returns:
        Tensor: (B, P, T, h, w) cost volume.
    """
    image_features = F.normalize(image_features, dim=1)
    text_features = F.normalize(text_features, dim=-1)
    if text_features.dim() == 3:
        return torch.einsum('bchw,tpc->bpthw', image_features, text_features)
    return torch.einsum('bchw,btpc->bpthw', image_features, text_features)


def top_classes_by_cost(cost: Tensor, num_classes: int) -> Tensor:
    """The ``num_classes`` classes of each image with the highest maximum cost (over templates
    and positions), in ascending class order, as CAT-Seg keeps for large vocabularies.

    Args:
        cost (Tensor): (B, P, T, h, w) cost volume.
        num_classes (int): how many classes to keep.

    Returns:
        LongTensor: (B, num_classes) class indices.
    """
    max_cost = cost.transpose(1, 2).flatten(2).amax(dim=-1)  # (B, T)
    return max_cost.topk(num_classes, dim=-1).indices.sort(dim=-1).values


class CATSegAggregator(BaseModule):
    """Cost aggregation network of CAT-Seg.

    The cosine cost volume between dense image embeddings and the text embeddings of every class
    and template is embedded by a 7x7 conv (templates as input channels), refined by
    ``num_layers`` x (spatial Swin aggregation guided by projected image features, then class
    linear-attention aggregation guided by projected text features), and decoded by transposed-conv
    upsampling blocks guided by intermediate image-encoder features, to one logit per class at
    ``2 ** len(decoder_dims)`` times the embedding resolution.

    Vocabularies longer than ``num_class_slots`` are reduced per image to the classes with the
    highest maximum cost; the dropped classes get ``dropped_class_logit`` in the output, so the
    memory is bounded for any vocabulary (ADE20K-847, Pascal-Context-459).

    Args:
        text_dims (int): text embedding size (image and text share it).
        num_templates (int): prompt templates per class (cost-volume channels).
        embed_dims (int): cost-embedding channels.
        appearance_guidance_dims (int): projected image-guidance channels (0: no guidance).
        text_guidance_dims (int): projected text-guidance channels (0: no guidance).
        decoder_dims (Sequence[int]): output channels of the upsampling blocks.
        decoder_guidance_dims (Sequence[int]): channels of the decoder guidance maps fed to
            :meth:`forward` (0 entries: no guidance for that block).
        decoder_guidance_proj_dims (Sequence[int]): their projected channels.
        num_layers (int): aggregation layers (2 for ViT-B, 4 for ViT-L in CAT-Seg).
        num_heads (int): attention heads of both aggregations.
        pooling_size (tuple[int, int]): spatial pooling of the class aggregation.
        window_size (int): Swin window side (shift: half of it).
        num_class_slots (int): fixed class-axis length: fewer classes are padded with learnable
            tokens in the class aggregation, more are reduced to the top ones. 0 disables both.
        dropped_class_logit (float): logit of classes dropped by the reduction.
        init_cfg (dict, optional): initialization config.
    """

    def __init__(self,
                 text_dims: int = 512,
                 num_templates: int = 1,
                 embed_dims: int = 128,
                 appearance_guidance_dims: int = 128,
                 text_guidance_dims: int = 128,
                 decoder_dims: Sequence[int] = (64, 32),
                 decoder_guidance_dims: Sequence[int] = (256, 128),
                 decoder_guidance_proj_dims: Sequence[int] = (32, 16),
                 num_layers: int = 2,
                 num_heads: int = 4,
                 pooling_size: Tuple[int, int] = (2, 2),
                 window_size: int = 12,
                 num_class_slots: int = 256,
                 dropped_class_logit: float = -100.0,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if not len(decoder_dims) == len(decoder_guidance_dims) == len(decoder_guidance_proj_dims):
            raise ValueError('decoder_dims, decoder_guidance_dims and decoder_guidance_proj_dims '
                             'need one entry per upsampling block')
        self.num_templates = num_templates
        self.num_class_slots = num_class_slots
        self.dropped_class_logit = dropped_class_logit
        self.cost_embed = nn.Conv2d(num_templates, embed_dims, 7, padding=3)
        self.appearance_guidance_proj = nn.Sequential(
            nn.Conv2d(text_dims, appearance_guidance_dims, 3, padding=1),
            nn.ReLU()) if appearance_guidance_dims > 0 else None
        self.text_guidance_proj = nn.Sequential(
            nn.Linear(text_dims, text_guidance_dims),
            nn.ReLU()) if text_guidance_dims > 0 else None
        self.spatial_layers = nn.ModuleList([
            GuidedSwinBlockPair(embed_dims, appearance_guidance_dims, num_heads, window_size)
            for _ in range(num_layers)
        ])
        self.class_layers = nn.ModuleList([
            ClassAggregationLayer(embed_dims, text_guidance_dims, num_heads, pooling_size,
                                  num_class_slots) for _ in range(num_layers)
        ])
        self.decoder_guidance_projs = nn.ModuleList([
            nn.Sequential(nn.Conv2d(dims, proj_dims, 3, padding=1), nn.ReLU())
            if dims > 0 else nn.Identity()
            for dims, proj_dims in zip(decoder_guidance_dims, decoder_guidance_proj_dims)
        ])
        self.decoder_guided = [dims > 0 for dims in decoder_guidance_dims]
        in_dims = [embed_dims, *decoder_dims[:-1]]
        self.decoder = nn.ModuleList([
            GuidedUpsampleBlock(in_channels, out_channels, proj_dims if guided else 0)
            for in_channels, out_channels, proj_dims, guided in zip(
                in_dims, decoder_dims, decoder_guidance_proj_dims, self.decoder_guided)
        ])
        self.logit_conv = nn.Conv2d(decoder_dims[-1], 1, 3, padding=1)

    def forward(self, image_features: Tensor, text_features: Tensor,
                decoder_guidance: Sequence[Optional[Tensor]]) -> Tensor:
        """
        Args:
            image_features (Tensor): (B, D, h, w) dense image embeddings (also the appearance
                guidance).
            text_features (Tensor): (T, P, D) or (B, T, P, D) text embeddings of T classes and
                P templates.
            decoder_guidance (Sequence[Tensor]): per upsampling block, (B, C_i, h * 2**(i+1),
                w * 2**(i+1)) guidance maps (None for unguided blocks).

        Returns:
            Tensor: (B, T, h * 2**n, w * 2**n) class logits.
        """
        batch = image_features.shape[0]
        if text_features.dim() == 3:
            text_features = text_features.expand(batch, -1, -1, -1)
        if text_features.shape[2] != self.num_templates:
            raise ValueError(f'the aggregator was built for {self.num_templates} prompt templates '
                             f'per class, got {text_features.shape[2]}')
        if len(decoder_guidance) != len(self.decoder):
            raise ValueError(f'expected {len(self.decoder)} decoder guidance maps, '
                             f'got {len(decoder_guidance)}')
        num_classes = text_features.shape[1]
        cost = cosine_cost_volume(image_features, text_features)
        kept_classes = None
        if self.num_class_slots and num_classes > self.num_class_slots:
            kept_classes = top_classes_by_cost(cost, self.num_class_slots)
            text_features = torch.gather(
                text_features, 1, kept_classes[:, :, None,
                                               None].expand(-1, -1, *text_features.shape[2:]))
            cost = torch.gather(
                cost, 2, kept_classes[:, None, :, None, None].expand(-1, cost.shape[1], -1,
                                                                     *cost.shape[3:]))

        height, width = cost.shape[-2:]
        kept = cost.shape[2]
        embedding = self.cost_embed(cost.transpose(1, 2).flatten(0, 1))  # (B * T, C, h, w)
        embedding = embedding.view(batch, kept, -1, height, width).transpose(1, 2)

        appearance_guidance = (
            self.appearance_guidance_proj(image_features)
            if self.appearance_guidance_proj is not None else None)
        text_guidance = None
        if self.text_guidance_proj is not None:
            text_guidance = self.text_guidance_proj(
                F.normalize(F.normalize(text_features, dim=-1).mean(dim=2), dim=-1))
        for spatial_layer, class_layer in zip(self.spatial_layers, self.class_layers):
            embedding = spatial_layer(embedding, appearance_guidance)
            embedding = class_layer(embedding, text_guidance)

        x = embedding.transpose(1, 2).flatten(0, 1)  # (B * T, C, h, w)
        for block, proj, guided, guidance in zip(self.decoder, self.decoder_guidance_projs,
                                                 self.decoder_guided, decoder_guidance):
            x = block(x, proj(guidance) if guided else None)
        logits = self.logit_conv(x).view(batch, kept, *x.shape[-2:])
        if kept_classes is None:
            return logits
        full = logits.new_full((batch, num_classes, *logits.shape[-2:]), self.dropped_class_logit)
        return full.scatter(1, kept_classes[:, :, None, None].expand_as(logits), logits)
