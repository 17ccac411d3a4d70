from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmpretrain.structures import DataSample

from silc_seg.registry import TRANSFORMS


def image_to_tensor(img: np.ndarray) -> torch.Tensor:
    """``(H, W, C)`` (or ``(H, W)``) array -> contiguous ``(C, H, W)`` tensor, dtype kept."""
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3:
        raise ValueError(f'expected an (H, W, C) image, got shape {img.shape}')
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def _stack_same_size(views: Sequence[np.ndarray], group: str) -> list:
    sizes = {view.shape for view in views}
    if len(sizes) != 1:
        raise ValueError(
            f'all {group} must have the same shape to be batched, got {sorted(sizes)}; '
            'check the crop sizes of the multi-crop pipeline')
    return [image_to_tensor(view) for view in views]


@TRANSFORMS.register_module()
class PackSILCInputs(BaseTransform):
    """Pack a SILC pretraining or validation sample (see ``docs/design.md``).

    A list in ``results['img']`` (the output of ``mmpretrain.MultiView``) is split into
    ``inputs['global_crops']`` (its first ``num_global_crops`` views), ``inputs['local_crops']``
    (the views after them) and, with ``num_contrastive_crops``, ``inputs['contrastive_crops']``
    (the last views: the images the image-text loss sees instead of the global crops). A single
    image becomes ``inputs['image']``. Images stay ``uint8`` in the channel order they were
    loaded in; ``SILCDataPreprocessor`` normalizes them. ``results['text']`` (from
    :class:`TokenizeCaption`) becomes ``inputs['text']``, the region tensors of
    :class:`TokenizeRegions` (``region_text``, ``region_boxes``, ``region_valid``) become inputs
    of the same names; ``results['gt_label']`` (concept indices,
    for zero-shot multi-label classification) becomes the data sample's ``gt_label``.

    Args:
        num_global_crops (int): How many of the views are global crops. Defaults to 2.
        require_local_crops (bool): Refuse view lists with only global crops (a multi-crop
            pipeline that lost its local views). False for single-view objectives (masked
            self-distillation), which then get no ``local_crops``. Defaults to True.
        num_contrastive_crops (int): How many of the views (the last ones) are contrastive
            crops. 0: the image-text loss uses the global crops. Defaults to 0.
        meta_keys (Sequence[str]): Keys of ``results`` copied into the data sample's metainfo
            when present (``num_skipped`` and ``stream_position`` come from the image-text
            datasets, for :class:`~silc_seg.engine.hooks.DataStatsHook` and
            :class:`~silc_seg.engine.hooks.StreamResumeHook`).
    """

    def __init__(
        self,
        num_global_crops: int = 2,
        require_local_crops: bool = True,
        num_contrastive_crops: int = 0,
        meta_keys: Sequence[str] = ('img_path', 'caption', 'sample_idx', 'ori_shape', 'img_shape',
                                    'num_skipped', 'stream_position')
    ) -> None:
        if num_global_crops < 1:
            raise ValueError(f'num_global_crops must be >= 1, got {num_global_crops}')
        if num_contrastive_crops < 0:
            raise ValueError(f'num_contrastive_crops must be >= 0, got {num_contrastive_crops}')
        self.num_global_crops = num_global_crops
        self.require_local_crops = require_local_crops
        self.num_contrastive_crops = num_contrastive_crops
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        """Pack ``results`` into ``dict(inputs=..., data_samples=DataSample)``.

        Args:
            results (dict): Result dict of the pipeline.

        Returns:
            dict: ``inputs`` (dict of tensors) and ``data_samples``.
        """
        img = results['img']
        inputs = {}
        if isinstance(img, (list, tuple)):
            num_local = len(img) - self.num_global_crops - self.num_contrastive_crops
            if num_local < 0 or (num_local == 0 and self.require_local_crops):
                raise ValueError(
                    f'got {len(img)} views but num_global_crops={self.num_global_crops} and '
                    f'num_contrastive_crops={self.num_contrastive_crops}: the multi-crop '
                    'pipeline must also produce local crops (or set require_local_crops=False)')
            local_end = self.num_global_crops + num_local
            inputs['global_crops'] = _stack_same_size(img[:self.num_global_crops], 'global crops')
            if num_local:
                inputs['local_crops'] = _stack_same_size(img[self.num_global_crops:local_end],
                                                         'local crops')
            if self.num_contrastive_crops:
                inputs['contrastive_crops'] = _stack_same_size(img[local_end:],
                                                               'contrastive crops')
        else:
            inputs['image'] = image_to_tensor(img)
        if 'text' in results:
            inputs['text'] = torch.as_tensor(results['text'], dtype=torch.long)
        for key in ('region_text', 'region_boxes', 'region_valid'):
            if key in results:
                inputs[key] = torch.as_tensor(results[key])

        data_sample = DataSample()
        if 'gt_label' in results:
            data_sample.set_gt_label(results['gt_label'])
        data_sample.set_metainfo({key: results[key] for key in self.meta_keys if key in results})
        return dict(inputs=inputs, data_samples=data_sample)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_global_crops={self.num_global_crops}, '
                f'require_local_crops={self.require_local_crops}, '
                f'num_contrastive_crops={self.num_contrastive_crops}, '
                f'meta_keys={self.meta_keys})')
