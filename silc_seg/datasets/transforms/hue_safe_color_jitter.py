import cv2
import mmcv
import numpy as np
from mmpretrain.datasets.transforms import ColorJitter

from silc_seg.registry import TRANSFORMS


def adjust_hue(img: np.ndarray, hue_factor: float) -> np.ndarray:
    """Rotate the hue of a BGR ``uint8`` image by ``hue_factor`` of a turn.

    ``mmcv.adjust_hue`` adds ``np.uint8(hue_factor * 255)`` to the hue channel, which raises
    ``OverflowError`` for negative factors under numpy 2. The rotation is done here in a wider
    integer type and wrapped modulo 256 (OpenCV's full-range hue), so ``-h`` and ``+h`` are
    symmetric and ``+-0.5`` give the complementary colours, as in torchvision.

    Args:
        img (np.ndarray): ``(H, W, 3)`` BGR ``uint8`` image.
        hue_factor (float): Hue shift in ``[-0.5, 0.5]`` of a full turn.

    Returns:
        np.ndarray: The hue-rotated image, ``uint8``, same shape.
    """
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f'hue_factor must be in [-0.5, 0.5], got {hue_factor}')
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(
            f'adjust_hue needs an (H, W, 3) image, got shape {img.shape}')
    if img.dtype != np.uint8:
        raise TypeError(f'adjust_hue needs a uint8 image, got {img.dtype}')
    shift = int(round(hue_factor * 256))
    if shift % 256 == 0:
        return img.copy()  # skip the lossy uint8 HSV round trip
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV_FULL)
    hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 256).astype(
        np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR_FULL)


@TRANSFORMS.register_module()
class HueSafeColorJitter(ColorJitter):
    """:class:`mmpretrain.ColorJitter` whose hue step works for negative shifts.

    Same arguments, random order of the four adjustments and sampling as
    :class:`mmpretrain.datasets.transforms.ColorJitter`; only the hue step is replaced by
    :func:`adjust_hue` (see there for the numpy 2 overflow it avoids).
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
        for index in trans_inds:
            if index == 0 and brightness is not None:
                img = mmcv.adjust_brightness(
                    img, brightness, backend=self.backend)
            elif index == 1 and contrast is not None:
                img = mmcv.adjust_contrast(img, contrast, backend=self.backend)
            elif index == 2 and saturation is not None:
                img = mmcv.adjust_color(
                    img, alpha=saturation, backend=self.backend)
            elif index == 3 and hue is not None:
                img = adjust_hue(img, hue)
        results['img'] = img
        return results
