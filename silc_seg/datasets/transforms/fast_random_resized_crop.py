import numpy as np
from mmcv.image.geometric import pillow_interp_codes
from mmpretrain.datasets.transforms import RandomResizedCrop
from PIL import Image

from silc_seg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class FastRandomResizedCrop(RandomResizedCrop):
    """:class:`mmpretrain.RandomResizedCrop` with a cheaper ``backend='pillow'`` path.

    Same arguments, crop sampling and output (bit for bit). mmpretrain crops with a numpy
    slice and hands that strided view to ``Image.fromarray``, which copies it element by element
    under numpy 2; here the crop is copied to a contiguous block first (docs/benchmarks.md, data
    pipeline). The ``'cv2'`` backend is mmpretrain's.
    """

    def transform(self, results: dict) -> dict:
        """Randomly crop ``results['img']`` and resize the crop to ``scale``.

        Args:
            results (dict): Result dict with ``img``.

        Returns:
            dict: ``img`` and ``img_shape`` updated.
        """
        if self.backend != 'pillow':
            return super().transform(results)
        img = results['img']
        if img.dtype != np.uint8:
            raise TypeError(f'the pillow backend needs a uint8 image, got {img.dtype}')
        top, left, height, width = self.rand_crop_params(img)
        crop = np.ascontiguousarray(img[top:top + height, left:left + width])
        resized = Image.fromarray(crop).resize((self.scale[1], self.scale[0]),
                                               pillow_interp_codes[self.interpolation])
        results['img'] = np.asarray(resized).copy()  # writable, as mmpretrain's
        results['img_shape'] = results['img'].shape
        return results
