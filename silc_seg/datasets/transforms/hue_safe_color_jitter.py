import cv2
import mmcv
import numpy as np
from mmpretrain.datasets.transforms import ColorJitter
from PIL import Image, ImageEnhance

from silc_seg.registry import TRANSFORMS

_TO_HSV = {'bgr': cv2.COLOR_BGR2HSV_FULL, 'rgb': cv2.COLOR_RGB2HSV_FULL}
_FROM_HSV = {'bgr': cv2.COLOR_HSV2BGR_FULL, 'rgb': cv2.COLOR_HSV2RGB_FULL}
# PIL enhancers of the brightness, contrast and saturation steps (mmcv's pillow backend).
_ENHANCERS = {0: ImageEnhance.Brightness, 1: ImageEnhance.Contrast, 2: ImageEnhance.Color}


def adjust_hue(img: np.ndarray, hue_factor: float, channel_order: str = 'bgr') -> np.ndarray:
    """Rotate the hue of a BGR (or RGB) ``uint8`` image by ``hue_factor`` of a turn.

    ``mmcv.adjust_hue`` adds ``np.uint8(hue_factor * 255)`` to the hue channel, which raises
    ``OverflowError`` for negative factors under numpy 2. The rotation is done here in a wider
    integer type and wrapped modulo 256 (OpenCV's full-range hue), so ``-h`` and ``+h`` are
    symmetric and ``+-0.5`` give the complementary colours, as in torchvision.

    Args:
        img (np.ndarray): ``(H, W, 3)`` ``uint8`` image.
        hue_factor (float): Hue shift in ``[-0.5, 0.5]`` of a full turn.
        channel_order (str): ``'bgr'`` or ``'rgb'``; the result has the same order.
            Defaults to ``'bgr'``.

    Returns:
        np.ndarray: The hue-rotated image, ``uint8``, same shape.
    """
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f'hue_factor must be in [-0.5, 0.5], got {hue_factor}')
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'adjust_hue needs an (H, W, 3) image, got shape {img.shape}')
    if img.dtype != np.uint8:
        raise TypeError(f'adjust_hue needs a uint8 image, got {img.dtype}')
    if channel_order not in _TO_HSV:
        raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
    shift = int(round(hue_factor * 256))
    if shift % 256 == 0:
        return img.copy()  # skip the lossy uint8 HSV round trip
    hsv = cv2.cvtColor(img, _TO_HSV[channel_order])
    hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 256).astype(np.uint8)
    return cv2.cvtColor(hsv, _FROM_HSV[channel_order])


@TRANSFORMS.register_module()
class HueSafeColorJitter(ColorJitter):
    """:class:`mmpretrain.ColorJitter` whose hue step works for negative shifts.

    Same arguments, random order of the four adjustments and sampling as
    :class:`mmpretrain.datasets.transforms.ColorJitter`; only the hue step is replaced by
    :func:`adjust_hue` (see there for the numpy 2 overflow it avoids).

    With the default ``backend='pillow'`` the output is that of mmpretrain's pillow path, but
    the image goes to PIL (RGB) once and comes back once, instead of a BGR -> RGB -> PIL ->
    numpy -> BGR round trip per adjustment: ``Image.fromarray`` of the channel-reversed views
    mmcv passes it is a slow strided copy (docs/benchmarks.md, data pipeline).
    """

    def transform(self, results: dict) -> dict:
        """Jitter ``results['img']`` (BGR ``uint8``).

        Args:
            results (dict): Result dict with ``img``.

        Returns:
            dict: The result dict with the jittered ``img``.
        """
        img = results['img']
        trans_inds, brightness, contrast, saturation, hue = self._rand_params()
        if self.backend == 'pillow':
            results['img'] = self._jitter_pillow(img, trans_inds, brightness, contrast, saturation,
                                                 hue)
            return results
        for index in trans_inds:
            if index == 0 and brightness is not None:
                img = mmcv.adjust_brightness(img, brightness, backend=self.backend)
            elif index == 1 and contrast is not None:
                img = mmcv.adjust_contrast(img, contrast, backend=self.backend)
            elif index == 2 and saturation is not None:
                img = mmcv.adjust_color(img, alpha=saturation, backend=self.backend)
            elif index == 3 and hue is not None:
                img = adjust_hue(img, hue)
        results['img'] = img
        return results

    @staticmethod
    def _jitter_pillow(img, trans_inds, brightness, contrast, saturation, hue) -> np.ndarray:
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError('the pillow backend of HueSafeColorJitter needs an (H, W, 3) '
                             f'uint8 image, got {img.dtype} {img.shape}')
        factors = {0: brightness, 1: contrast, 2: saturation}
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)  # contiguous, unlike img[..., ::-1]
        pil_image = None
        for index in trans_inds:
            if index == 3:
                if hue is None:
                    continue
                if pil_image is not None:
                    rgb, pil_image = np.asarray(pil_image), None
                rgb = adjust_hue(rgb, hue, channel_order='rgb')
            elif factors[index] is not None:
                if pil_image is None:
                    pil_image = Image.fromarray(rgb)
                pil_image = _ENHANCERS[index](pil_image).enhance(factors[index])
        if pil_image is not None:
            rgb = np.asarray(pil_image)
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
