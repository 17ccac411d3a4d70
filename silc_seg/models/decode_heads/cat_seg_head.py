"""Decode head of CAT-Seg: guidance upsamplers + cost aggregator + per-class BCE loss."""
from typing import Optional, Sequence

import torch
from mmengine.model import BaseModule
from mmseg.models.losses import accuracy
from mmseg.models.utils import resize
from mmseg.utils import SampleList
from torch import Tensor, nn

from silc_seg.registry import MODELS
from ..layers.cat_seg_aggregator import CATSegAggregator


@MODELS.register_module()
class CATSegHead(BaseModule):
    """CAT-Seg head (CVPR 2024 version, no extra backbone).

    The intermediate image-encoder maps (CAT-Seg: after blocks 4 and 8 of ViT-B) are upsampled
    by transposed convolutions (2x and 4x) to guide the decoder's upsampling blocks; the dense
    projected image embeddings build the cost volume with the text embeddings and guide the
    spatial aggregation (see :class:`CATSegAggregator`).

    Args:
        vision_width (int): channels of the intermediate image-encoder maps.
        aggregator (dict): keyword arguments of :class:`CATSegAggregator`.
        guidance_upsample_dims (Sequence[int]): output channels of the transposed convolutions
            of each intermediate map; must equal ``aggregator['decoder_guidance_dims']``.
        guidance_upsample_scales (Sequence[int]): their upsampling factors (kernel = stride).
        loss_decode (dict): loss config, called as ``loss(logits, labels, ignore_index=...)``
            with (B, T, H, W) logits and (B, H, W) labels. The default,
            :class:`~silc_seg.models.losses.PerClassBCELoss`, is CAT-Seg's: per-class binary
            cross-entropy over one-hot targets, ignored pixels kept with all-zero targets,
            averaged over all pixels and classes. mmseg's
            ``dict(type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True)`` leaves the
            ignored pixels out instead.
        ignore_index (int): label value excluded from the loss.
        align_corners (bool): for resizing logits to the label size.
        init_cfg (dict, optional): initialization config.
    """

    def __init__(self,
                 vision_width: int = 768,
                 aggregator: dict = dict(),
                 guidance_upsample_dims: Sequence[int] = (256, 128),
                 guidance_upsample_scales: Sequence[int] = (2, 4),
                 loss_decode: dict = dict(type='PerClassBCELoss', loss_weight=1.0),
                 ignore_index: int = 255,
                 align_corners: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.aggregator = CATSegAggregator(**aggregator)
        decoder_guidance_dims = tuple(aggregator.get('decoder_guidance_dims', (256, 128)))
        if tuple(guidance_upsample_dims) != decoder_guidance_dims:
            raise ValueError(f'guidance_upsample_dims {tuple(guidance_upsample_dims)} must equal '
                             f"aggregator['decoder_guidance_dims'] {decoder_guidance_dims}")
        if len(guidance_upsample_scales) != len(guidance_upsample_dims):
            raise ValueError('give one guidance_upsample_scales entry per guidance map')
        self.guidance_upsamplers = nn.ModuleList([
            nn.ConvTranspose2d(vision_width, dims, scale, stride=scale)
            for dims, scale in zip(guidance_upsample_dims, guidance_upsample_scales)
        ])
        self.loss_decode = MODELS.build(loss_decode)
        self.ignore_index = ignore_index
        self.align_corners = align_corners

    @property
    def num_guidance_maps(self) -> int:
        """How many intermediate image-encoder maps :meth:`forward` expects."""
        return len(self.guidance_upsamplers)

    def forward(self, dense: Tensor, intermediates: Sequence[Tensor],
                text_features: Tensor) -> Tensor:
        """
        Args:
            dense (Tensor): (B, D, h, w) projected dense image embeddings.
            intermediates (Sequence[Tensor]): (B, vision_width, h, w) intermediate maps.
            text_features (Tensor): (T, P, D) or (B, T, P, D) text embeddings.

        Returns:
            Tensor: (B, T, 4h, 4w) class logits (for the default two decoder blocks).
        """
        if len(intermediates) != self.num_guidance_maps:
            raise ValueError(f'CATSegHead expects {self.num_guidance_maps} intermediate maps, '
                             f'got {len(intermediates)}')
        guidance = [up(feature) for up, feature in zip(self.guidance_upsamplers, intermediates)]
        return self.aggregator(dense, text_features, guidance)

    def loss_by_feat(self, seg_logits: Tensor, batch_data_samples: SampleList) -> dict:
        """Per-class binary cross-entropy of the logits resized to the label size.

        Args:
            seg_logits (Tensor): (B, T, h, w) class logits.
            batch_data_samples (list[SegDataSample]): samples with ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: the loss and the pixel accuracy.
        """
        labels = torch.stack([sample.gt_sem_seg.data for sample in batch_data_samples])
        seg_logits = resize(
            seg_logits, size=labels.shape[2:], mode='bilinear', align_corners=self.align_corners)
        labels = labels.squeeze(1)
        valid = labels[labels != self.ignore_index]
        if valid.numel() and (valid.max() >= seg_logits.shape[1] or valid.min() < 0):
            raise ValueError(
                f'labels range over [{int(valid.min())}, {int(valid.max())}] but there are '
                f'{seg_logits.shape[1]} training classes; check the training class names '
                'against the dataset')
        return {
            self.loss_decode.loss_name:
            self.loss_decode(seg_logits, labels, ignore_index=self.ignore_index),
            'acc_seg':
            accuracy(seg_logits, labels, ignore_index=self.ignore_index),
        }
