"""Open-vocabulary segmentation in a few lines: weights by name, free-form class names.

    seg = OpenVocabSegmenter('openai:ViT-B-16', method='naclip')
    result = seg('photo.jpg', ['cat', 'grass', 'sky'])
    result.labels, result.probs, result.areas(), result.overlay('overlay.png')

The model is the training-free :class:`~silc_seg.models.ZeroShotSegmentor` with the method's
preset (``configs/zero_shot/_base_/<method>.py``) on the towers the weights fit.
"""
import os.path as osp
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config, ConfigDict

from silc_seg.utils.config import get_config_path

# Method -> zero-shot preset (each paper's last block, templates, windows, logit scale).
METHOD_CONFIGS = {
    'plain': 'configs/zero_shot/_base_/openai-clip_vit-b16_zero-shot.py',
    'maskclip': 'configs/zero_shot/_base_/maskclip.py',
    'sclip': 'configs/zero_shot/_base_/sclip.py',
    'clearclip': 'configs/zero_shot/_base_/clearclip.py',
    'naclip': 'configs/zero_shot/_base_/naclip.py',
}
# The towers the presets are written for; what a preset adds to them (e.g. NACLIP's position
# embedding resizing) is kept when the towers are replaced.
PRESET_TOWERS = 'configs/_base_/towers/openai-clip_vit-b-16.py'

ImageInput = Union[str, Path, np.ndarray, 'PIL.Image.Image']  # noqa: F821


def _config(path: str) -> Config:
    return Config.fromfile(path if osp.isabs(path) else get_config_path(path))


def zero_shot_config(towers: str,
                     method: str = 'naclip',
                     tokenizer: Optional[dict] = None,
                     short_side: int = 448) -> Config:
    """A zero-shot segmentation config: ``method``'s preset on the towers of ``towers``.

    Args:
        towers (str): a config defining ``image_encoder``, ``text_encoder``, ``tokenizer``,
            ``image_mean`` / ``image_std`` (``configs/_base_/towers/*.py`` or
            ``configs/_base_/models/*.py``, as converted weights record in ``meta['config']``).
        method (str): one of :data:`METHOD_CONFIGS`.
        tokenizer (dict, optional): overrides of the tokenizer (a downloaded vocabulary file).
        short_side (int): images are resized to this short side (aspect kept) first.

    Returns:
        Config: with ``model`` and ``test_pipeline`` (from an image array).
    """
    if method not in METHOD_CONFIGS:
        raise ValueError(f'unknown method {method!r}; choose from {sorted(METHOD_CONFIGS)}')
    cfg = _config(METHOD_CONFIGS[method])
    preset_towers, new_towers = _config(PRESET_TOWERS), _config(towers)
    for key in ('image_encoder', 'text_encoder'):
        added = {
            name: value
            for name, value in cfg.model[key].items() if name not in preset_towers[key]
        }
        cfg.model[key] = ConfigDict({**new_towers[key], **added})
    cfg.model.tokenizer = ConfigDict({**new_towers.tokenizer, **(tokenizer or {})})
    cfg.model.data_preprocessor.mean = list(new_towers.image_mean)
    cfg.model.data_preprocessor.std = list(new_towers.image_std)
    cfg.test_pipeline = [
        dict(type='LoadImageFromNDArray'),
        dict(type='Resize', scale=(100 * short_side, short_side), keep_ratio=True),
        dict(type='PackSegInputs'),
    ]
    return cfg


def class_palette(num_classes: int) -> List[tuple]:
    """Distinct, reproducible RGB colours (golden-ratio hues)."""
    import cv2
    hues = (np.arange(num_classes) * 0.618033988749895 % 1.0 * 180).astype(np.uint8)
    hsv = np.stack([hues, np.full_like(hues, 200), np.full_like(hues, 230)], -1)
    rgb = cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0]
    return [tuple(int(c) for c in colour) for colour in rgb]


@dataclass
class Segmentation:
    """The segmentation of one image.

    Attributes:
        image (np.ndarray): ``(H, W, 3)`` uint8 RGB input.
        labels (np.ndarray): ``(H, W)`` int64 class index per pixel.
        probs (np.ndarray): ``(C, H, W)`` float32 class probabilities (synonyms merged).
        classes (list[str]): class names (the first synonym of each class).
    """
    image: np.ndarray
    labels: np.ndarray
    probs: np.ndarray
    classes: List[str]

    def areas(self) -> Dict[str, float]:
        """Share of the image each class covers (every class, in vocabulary order)."""
        counts = np.bincount(self.labels.ravel(), minlength=len(self.classes))
        return {
            name: float(counts[index]) / self.labels.size
            for index, name in enumerate(self.classes)
        }

    def palette(self) -> List[tuple]:
        return class_palette(len(self.classes))

    def overlay(self, path: Optional[str] = None, opacity: float = 0.5) -> np.ndarray:
        """The image with each class painted in its colour.

        Args:
            path (str, optional): also save the overlay there (PNG, JPEG...).
            opacity (float): mask opacity in (0, 1].

        Returns:
            np.ndarray: ``(H, W, 3)`` uint8 RGB.
        """
        colours = np.array(self.palette(), dtype=np.float32)
        painted = colours[np.clip(self.labels, 0, len(colours) - 1)]
        blended = (1 - opacity) * self.image.astype(np.float32) + opacity * painted
        overlay = blended.round().clip(0, 255).astype(np.uint8)
        if path is not None:
            import mmcv
            mmcv.imwrite(overlay[..., ::-1], str(path))
        return overlay

    def label_image(self, path: Optional[str] = None):
        """The labels as a palette PNG (pixel value = class index, colours of :meth:`overlay`).

        Returns:
            PIL.Image.Image: mode ``'P'``.
        """
        from PIL import Image
        if len(self.classes) > 256:
            raise ValueError(f'a palette PNG holds 256 classes, not {len(self.classes)}')
        image = Image.fromarray(self.labels.astype(np.uint8), mode='P')
        image.putpalette([c for colour in self.palette() for c in colour])
        if path is not None:
            image.save(str(path))
        return image


def _as_bgr(image: ImageInput) -> np.ndarray:
    """A BGR uint8 array of a path, an RGB array or a PIL image (clear error otherwise)."""
    if isinstance(image, (str, Path)):
        import mmcv
        if not osp.isfile(str(image)):
            raise FileNotFoundError(f'{image}: no such image file')
        try:
            array = mmcv.imread(str(image))
        except Exception:  # decoders raise many types on non-image bytes
            array = None
        if array is None or array.size == 0:
            raise ValueError(f'{image} is not an image OpenCV can read (PNG, JPEG, BMP, ...)')
        return array
    if hasattr(image, 'convert') and hasattr(image, 'size'):  # PIL
        image = np.asarray(image.convert('RGB'))
    if not isinstance(image, np.ndarray):
        raise TypeError(f'images are paths, arrays or PIL images, got {type(image).__name__}')
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4) or min(image.shape[:2]) < 1:
        raise ValueError(f'an image array is (H, W, 3) RGB, got shape {image.shape}')
    if image.dtype != np.uint8:
        raise ValueError(f'an image array is uint8, got {image.dtype}')
    return np.ascontiguousarray(image[..., 2::-1])


def recorded_towers(checkpoint: str) -> str:
    """The tower config a converted checkpoint records (``meta['config']``)."""
    from silc_seg.utils.checkpoint import load_from_local
    meta = load_from_local(checkpoint).get('meta') or {}
    if not isinstance(meta, dict) or not meta.get('config'):
        raise ValueError(f'{checkpoint} does not record the towers it fits '
                         "(meta['config']): give a zero-shot config")
    return meta['config']


class OpenVocabSegmenter:
    """Training-free open-vocabulary segmentation with public or own weights.

    Args:
        model (str): a weights name (``openai:ViT-B-16``, ``open_clip:MODEL/TAG``,
            ``hf-hub:ORG/REPO``, a big_vision URL; docs/weights.md) or a converted checkpoint
            (its ``meta['config']`` names the towers, or give ``config``).
        method (str): ``'naclip'`` (default), ``'sclip'``, ``'clearclip'``, ``'maskclip'`` or
            ``'plain'``.
        config (str, optional): a full zero-shot config to use instead of the preset.
        device (str, optional): defaults to ``'cuda'`` when available, else ``'cpu'``.
        cfg_options (dict, optional): overrides merged into the config (checked keys).
        short_side (int): resize images to this short side first. Defaults to 448.
        batch_size (int): images per forward when segmenting a batch.
    """

    def __init__(self,
                 model: str,
                 method: str = 'naclip',
                 config: Optional[str] = None,
                 device: Optional[str] = None,
                 cfg_options: Optional[dict] = None,
                 short_side: int = 448,
                 batch_size: int = 4):
        from silc_seg.apis.inference import init_model
        from silc_seg.hub import is_pretrained_name, resolve_pretrained
        checkpoint = str(model)
        if config is not None:
            cfg = _config(config)
        elif is_pretrained_name(checkpoint):
            weights = resolve_pretrained(checkpoint)
            cfg = zero_shot_config(weights.config, method, weights.tokenizer, short_side)
            checkpoint = weights.checkpoint
        else:
            cfg = zero_shot_config(recorded_towers(checkpoint), method, short_side=short_side)
        self.device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
        self.model = init_model(cfg, checkpoint, self.device, cfg_options)
        self.method = method
        self.batch_size = batch_size
        self._vocabulary = None
        self.pipeline = self._array_pipeline(self.model.cfg)

    @staticmethod
    def _array_pipeline(cfg: Config):
        """The config's test pipeline, reading arrays, without annotations."""
        from mmengine.dataset import Compose
        if 'test_pipeline' not in cfg:
            raise ValueError('the config has no test_pipeline')
        steps = [dict(step) for step in cfg.test_pipeline if step['type'] != 'LoadAnnotations']
        if steps and steps[0]['type'] == 'LoadImageFromFile':
            steps[0] = dict(type='LoadImageFromNDArray')
        return Compose(steps)

    def _set_classes(self, classes) -> List[str]:
        from silc_seg.models.utils import build_vocabulary, parse_class_list
        if isinstance(classes, str):
            vocabulary = (
                build_vocabulary(classes) if osp.isfile(classes) else parse_class_list(
                    classes, source='classes'))
        else:
            vocabulary = build_vocabulary(list(classes))
        if vocabulary != self._vocabulary:
            self.model.set_vocabulary(vocabulary)
            self._vocabulary = vocabulary
        return [synonyms[0] for synonyms in vocabulary]

    @torch.no_grad()
    def __call__(self, images, classes: Union[str, Sequence]):
        """Segment one image or a batch.

        Args:
            images: a path, an ``(H, W, 3)`` RGB uint8 array or a PIL image, or a list of them
                (or a ``(B, H, W, 3)`` array).
            classes (str | Sequence): ``'cat,grass,sky'``, a class-name file, or a list of
                names / synonym lists.

        Returns:
            Segmentation | list[Segmentation]: one per image (a list for a batch).
        """
        names = self._set_classes(classes)
        is_batch = isinstance(images, (list, tuple)) or (isinstance(images, np.ndarray)
                                                         and images.ndim == 4)
        batch = list(images) if is_batch else [images]
        arrays = [_as_bgr(image) for image in batch]
        results = []
        for start in range(0, len(arrays), self.batch_size):
            chunk = [
                self.pipeline(dict(img=array)) for array in arrays[start:start + self.batch_size]
            ]
            samples = self.model.test_step(
                dict(
                    inputs=[item['inputs'] for item in chunk],
                    data_samples=[item['data_samples'] for item in chunk]))
            for array, sample in zip(arrays[start:], samples):
                results.append(
                    Segmentation(
                        image=np.ascontiguousarray(array[..., ::-1]),
                        labels=sample.pred_sem_seg.data[0].cpu().numpy().astype(np.int64),
                        probs=sample.seg_logits.data.float().cpu().numpy(),
                        classes=names))
        return results if is_batch else results[0]
