from typing import Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseDataPreprocessor

from silc_seg.registry import MODELS

# OpenAI CLIP statistics on the 0-255 scale (RGB).
CLIP_MEAN = (122.7709383, 116.7460125, 104.09373615)
CLIP_STD = (68.5005327, 66.6321579, 70.32316305)


def stack_views(views: Sequence, name: str) -> torch.Tensor:
    """Stack per-view batches view-major: crop ``v`` of sample ``b`` lands at row ``v * B + b``.

    Args:
        views (Sequence): One entry per view, each a ``(B, C, H, W)`` tensor (``default_collate``)
            or a sequence of ``B`` ``(C, H, W)`` tensors (``pseudo_collate``).
        name (str): Input name, for error messages.

    Returns:
        Tensor: ``(V * B, C, H, W)``.
    """
    batches = [
        view if isinstance(view, torch.Tensor) else torch.stack(list(view)) for view in views
    ]
    shapes = {tuple(batch.shape) for batch in batches}
    if len(shapes) != 1:
        raise ValueError(
            f'every view of {name} must have the same batch shape, got {sorted(shapes)}')
    return torch.cat(batches, dim=0)


def stack_images(images: Union[torch.Tensor, Sequence[torch.Tensor]], name: str) -> torch.Tensor:
    """``(B, C, H, W)`` from a batched tensor or a sequence of ``(C, H, W)`` tensors."""
    if isinstance(images, torch.Tensor):
        return images
    shapes = {tuple(img.shape) for img in images}
    if len(shapes) != 1:
        raise ValueError(
            f'all {name} of a batch must have the same shape (resize or crop them in the '
            f'pipeline), got {sorted(shapes)}')
    return torch.stack(list(images))


@MODELS.register_module()
class SILCDataPreprocessor(BaseDataPreprocessor):
    """Batch, normalize and lay out SILC inputs (see ``docs/design.md``).

    Training batches (from ``PackSILCInputs`` with multi-crop views) become
    ``inputs = dict(global_crops=(Ng * B, 3, Hg, Wg), local_crops=(Nl * B, 3, Hl, Wl),
    text=(B, L))`` (and ``contrastive_crops=(Nc * B, 3, Hc, Wc)`` when packed), views stacked
    view-major; the region tensors of ``TokenizeRegions`` (``region_text=(B, R, L)``,
    ``region_boxes=(B, R, 4)``, ``region_valid=(B, R)``) pass through. Validation batches become
    ``inputs = dict(image=(B, 3, H, W), text=(B, L))``. Images are converted from ``uint8`` to
    float, optionally from BGR to RGB, and normalized with ``mean`` / ``std`` (0-255 scale).
    With ``batch_augments``, training crops are augmented in between, on the device (RGB,
    0-255), e.g. by :class:`BatchPhotometricAugment` (DINO's photometric recipe), so that the
    dataloader workers only decode and crop.

    Args:
        mean (Sequence[float]): Per-channel mean, in the output channel order.
            Defaults to OpenAI CLIP's.
        std (Sequence[float]): Per-channel std, in the output channel order.
            Defaults to OpenAI CLIP's.
        bgr_to_rgb (bool): Flip the channel order first (images loaded by mmcv are BGR).
            Defaults to True.
        non_blocking (bool): Non-blocking host-to-device copies. Defaults to False.
        batch_augments (dict, optional): Augmentations of the training crops by input name
            (``global_crops``, ``local_crops``, ``contrastive_crops``): a module config applied
            to every view of that input, or a list of configs, one per view (e.g. DINO's two
            global views differ in blur and solarization). Each gets ``(B, 3, H, W)`` float RGB
            images on the 0-255 scale and returns them augmented. Not applied when
            ``training`` is False (validation). Defaults to None.
    """

    image_keys = ('global_crops', 'local_crops', 'contrastive_crops', 'image')
    view_keys = ('global_crops', 'local_crops', 'contrastive_crops')
    region_keys = ('region_text', 'region_boxes', 'region_valid')

    def __init__(self,
                 mean: Sequence[float] = CLIP_MEAN,
                 std: Sequence[float] = CLIP_STD,
                 bgr_to_rgb: bool = True,
                 non_blocking: Optional[bool] = False,
                 batch_augments: Optional[dict] = None) -> None:
        super().__init__(non_blocking)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f'mean and std need 3 values, got {len(mean)} and {len(std)}')
        self.bgr_to_rgb = bgr_to_rgb
        self.register_buffer('mean', torch.tensor(mean).view(1, 3, 1, 1), False)
        self.register_buffer('std', torch.tensor(std).view(1, 3, 1, 1), False)
        self.batch_augments = nn.ModuleDict()
        self._per_view = {}  # key -> a list of configs, one per view (else one for all)
        for key, cfg in (batch_augments or {}).items():
            if key not in self.view_keys:
                raise KeyError(f'batch_augments: {key!r} is not one of {self.view_keys}')
            if cfg is None:
                continue
            configs = cfg if isinstance(cfg, (list, tuple)) else [cfg]
            self.batch_augments[key] = nn.ModuleList(
                [c if isinstance(c, nn.Module) else MODELS.build(c) for c in configs])
            self._per_view[key] = isinstance(cfg, (list, tuple))

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` ``uint8`` (or float 0-255) -> normalized float."""
        if images.dim() != 4 or images.size(1) != 3:
            raise ValueError(f'expected (N, 3, H, W) images, got shape {tuple(images.shape)}')
        if self.bgr_to_rgb:
            images = images.flip(1)
        return (images.float() - self.mean) / self.std

    def augment(self, key: str, images: torch.Tensor, num_views: int) -> torch.Tensor:
        """``batch_augments[key]`` of view-major ``(V * B, 3, H, W)`` images -> normalized."""
        if images.dim() != 4 or images.size(1) != 3:
            raise ValueError(f'expected (N, 3, H, W) images, got shape {tuple(images.shape)}')
        augments = self.batch_augments[key]
        if self._per_view[key] and len(augments) != num_views:
            raise ValueError(f'batch_augments[{key!r}] has {len(augments)} entries (one per '
                             f'view) but the batch has {num_views} {key} views')
        images = (images.flip(1) if self.bgr_to_rgb else images).float()
        views = images.chunk(num_views) if self._per_view[key] else [images]
        images = torch.cat([augment(view) for augment, view in zip(augments, views)] if self.
                           _per_view[key] else [augments[0](images)])
        return (images - self.mean) / self.std

    def forward(self, data: dict, training: bool = False) -> dict:
        """Lay out, move to the device, augment (training only) and normalize a batch.

        Args:
            data (dict): ``inputs`` (dict of collated inputs) and ``data_samples``.
            training (bool): Apply ``batch_augments``; the layout follows the keys present.

        Returns:
            dict: ``inputs`` and ``data_samples``.
        """
        inputs = data['inputs']
        if not isinstance(inputs, Mapping):
            raise TypeError(
                'SILCDataPreprocessor needs inputs as a dict (from PackSILCInputs), got '
                f'{type(inputs).__name__}')
        unknown = set(inputs) - {*self.image_keys, *self.region_keys, 'text'}
        if unknown:
            raise KeyError(f'unexpected input keys {sorted(unknown)}')
        batch = {}
        for key in self.view_keys:
            if key in inputs:
                batch[key] = stack_views(inputs[key], key)
        if 'image' in inputs:
            batch['image'] = stack_images(inputs['image'], 'images')
        if 'text' in inputs:
            batch['text'] = stack_images(inputs['text'], 'token id rows').long()
        for key in self.region_keys:
            if key in inputs:
                batch[key] = stack_images(inputs[key], key)
        batch = self.cast_data(batch)
        for key in self.image_keys:
            if key not in batch:
                continue
            if training and key in self.batch_augments:
                batch[key] = self.augment(key, batch[key], len(inputs[key]))
            else:
                batch[key] = self.normalize(batch[key])
        return dict(inputs=batch, data_samples=self.cast_data(data.get('data_samples')))
