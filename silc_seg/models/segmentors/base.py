"""What the open-vocabulary segmentors (zero-shot and CAT-Seg) share at test time: the test
configuration check, default data samples, and the way back from logits of the unpadded input
to the original image (undo the flip, resize to ``ori_shape``).

mmseg's ``BaseSegmentor.postprocess_result`` does the same geometry for one tensor of equally
sized logits and then takes the arg-max; ours run on images of different sizes in one batch
(each cut to its ``img_shape``) and turn query logits into class scores after resizing (the
zero-shot head's softmax, synonym merge and background rules, PAMR), so the steps are shared
here instead.
"""
from abc import abstractmethod
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors import BaseSegmentor
from mmseg.structures import SegDataSample
from torch import Tensor

from .vocabulary import VocabularyMixin


class OpenVocabularySegmentor(VocabularyMixin, BaseSegmentor):
    """Base of the segmentors that score text-defined classes on every pixel.

    Subclasses implement :meth:`inference` (one logit map per image at its ``img_shape``) and
    may override :meth:`postprocess_image` (default: undo flip and resize, arg-max).
    """

    align_corners = False

    @staticmethod
    def check_test_cfg(test_cfg: Optional[dict], slide_keys: Sequence[str]) -> dict:
        """Validate ``test_cfg``: ``mode`` is ``'whole'`` (default) or ``'slide'``; in slide mode
        every key of ``slide_keys`` is given as a positive int or ``(h, w)`` pair (an int ``n``
        becomes ``(n, n)``).

        Args:
            test_cfg (dict, optional): the configured test settings.
            slide_keys (Sequence[str]): the size keys that slide mode needs.

        Returns:
            dict: a copy with ``mode`` set and the size keys as tuples.
        """
        test_cfg = dict(test_cfg or dict(mode='whole'))
        mode = test_cfg.setdefault('mode', 'whole')
        if mode not in ('whole', 'slide'):
            raise ValueError(f"test_cfg.mode must be 'whole' or 'slide', got {mode!r}")
        if mode == 'slide':
            for key in slide_keys:
                if key not in test_cfg:
                    raise ValueError(f"test_cfg.mode='slide' needs test_cfg.{key}")
                value = test_cfg[key]
                value = (value, value) if isinstance(value, int) else tuple(value)
                if len(value) != 2 or min(value) < 1:
                    raise ValueError(f'test_cfg.{key} must be a positive int or (h, w)')
                test_cfg[key] = value
        return test_cfg

    @staticmethod
    def default_data_samples(inputs: Tensor) -> List[SegDataSample]:
        """Data samples for a bare batch: every image unpadded at its original size."""
        return [
            SegDataSample(metainfo=dict(img_shape=inputs.shape[-2:], ori_shape=inputs.shape[-2:]))
            for _ in range(inputs.shape[0])
        ]

    @staticmethod
    def unpadded_images(inputs: Tensor, batch_img_metas: List[dict]) -> List[Tensor]:
        """Each image of a (possibly padded) batch cut to its ``img_shape``."""
        images = []
        for image, meta in zip(inputs, batch_img_metas):
            height, width = meta.get('img_shape', image.shape[-2:])[:2]
            images.append(image[:, :height, :width])
        return images

    def to_original_geometry(self, maps: Tensor, meta: dict) -> Tensor:
        """Undo the test-time flip of ``(C, h, w)`` maps and resize them to ``ori_shape``.

        Args:
            maps (Tensor): logits (or an image) at the unpadded input size.
            meta (dict): the sample's metainfo (``flip``, ``flip_direction``, ``ori_shape``).

        Returns:
            Tensor: ``(C, H, W)`` at the original size.
        """
        if meta.get('flip', False):
            dims = (2, ) if meta.get('flip_direction') == 'horizontal' else (1, )
            maps = maps.flip(dims=dims)
        ori_shape = tuple(meta.get('ori_shape', maps.shape[-2:])[:2])
        if ori_shape == tuple(maps.shape[-2:]):
            return maps  # a bilinear resize to the same size is the identity
        return F.interpolate(
            maps[None], size=ori_shape, mode='bilinear', align_corners=self.align_corners)[0]

    @abstractmethod
    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> List[Tensor]:
        """``(C, h_i, w_i)`` logits of every image at its unpadded input size."""

    def postprocess_image(self, sample: SegDataSample, image: Tensor, logits: Tensor) -> None:
        """Set ``seg_logits`` (the logits at the original size) and ``pred_sem_seg`` (their
        arg-max) of one sample.

        Args:
            sample (SegDataSample): the sample to fill.
            image (Tensor): ``(3, h, w)`` the unpadded input image.
            logits (Tensor): ``(C, h, w)`` its logits.
        """
        logits = self.to_original_geometry(logits, sample.metainfo)
        sample.set_data(
            dict(
                seg_logits=PixelData(data=logits),
                pred_sem_seg=PixelData(data=logits.argmax(dim=0, keepdim=True))))

    def predict(self, inputs: Tensor, data_samples=None) -> List[SegDataSample]:
        """Segment a batch; the samples get ``seg_logits`` and ``pred_sem_seg`` at their
        original image size.

        Args:
            inputs (Tensor): (B, 3, H, W) preprocessed (possibly padded) images.
            data_samples (list[SegDataSample], optional): samples with metainfo.

        Returns:
            list[SegDataSample]: the segmentation results.
        """
        if data_samples is None:
            data_samples = self.default_data_samples(inputs)
        batch_img_metas = [sample.metainfo for sample in data_samples]
        with torch.no_grad():
            logits = self.inference(inputs, batch_img_metas)
            images = self.unpadded_images(inputs, batch_img_metas)
            for sample, image, image_logits in zip(data_samples, images, logits):
                self.postprocess_image(sample, image, image_logits)
        return data_samples
