"""The faster pillow paths of the multi-crop pipeline give the output of the paths they replace."""
import mmcv
import numpy as np
import pytest
from mmpretrain.datasets.transforms import ColorJitter, RandomResizedCrop

from silc_seg.datasets.transforms import FastRandomResizedCrop, HueSafeColorJitter, adjust_hue


def _photo(seed, height=150, width=200):
    """Smooth colours plus noise (a flat random image would hide interpolation differences)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([xx * 255 / width, yy * 255 / height, (xx + yy) % 97 * 2.5], -1)
    return np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize('size,scale', [(64, (0.4, 1.0)), (24, (0.05, 0.4)), ((40, 56), (0.2, 1))])
def test_fast_random_resized_crop_matches_mmpretrain(size, scale):
    img = _photo(0)
    kwargs = dict(scale=size, crop_ratio_range=scale, interpolation='bicubic', backend='pillow')
    for seed in range(15):
        np.random.seed(seed)
        ref = RandomResizedCrop(**kwargs)(dict(img=img.copy()))
        np.random.seed(seed)
        out = FastRandomResizedCrop(**kwargs)(dict(img=img.copy()))
        np.testing.assert_array_equal(out['img'], ref['img'])
        assert out['img_shape'] == ref['img_shape']
        assert out['img'].flags.writeable and out['img'].flags.c_contiguous
    # A crop of the whole image, resized to its own size, is the image itself.
    whole = FastRandomResizedCrop(
        scale=(150, 200),
        crop_ratio_range=(1, 1),
        aspect_ratio_range=(4 / 3, 4 / 3),
        backend='pillow')
    np.testing.assert_array_equal(whole(dict(img=img))['img'], img)


def _jitter_step_by_step(img, order, brightness, contrast, saturation, hue):
    """mmpretrain's ColorJitter loop (mmcv pillow functions, one PIL round trip per step), with
    the hue step of :func:`adjust_hue`."""
    for index in order:
        if index == 0 and brightness is not None:
            img = mmcv.adjust_brightness(img, brightness, backend='pillow')
        elif index == 1 and contrast is not None:
            img = mmcv.adjust_contrast(img, contrast, backend='pillow')
        elif index == 2 and saturation is not None:
            img = mmcv.adjust_color(img, alpha=saturation, backend='pillow')
        elif index == 3 and hue is not None:
            img = adjust_hue(img, hue)
    return img


@pytest.mark.filterwarnings('ignore:Only use')
@pytest.mark.parametrize('kwargs', [
    dict(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1),
    dict(brightness=0.3, contrast=0.3),
    dict(saturation=0.9, hue=0.4),
])
def test_hue_safe_color_jitter_single_round_trip_matches_step_by_step(kwargs):
    # A flipped view: the channel-reversed, negatively strided input mmcv's RandomFlip yields.
    img = _photo(1)[:, ::-1]
    jitter = HueSafeColorJitter(**kwargs)
    sampler = ColorJitter(**kwargs)
    for seed in range(25):
        np.random.seed(seed)
        params = sampler._rand_params()
        expected = _jitter_step_by_step(img, *params)
        np.random.seed(seed)
        out = jitter(dict(img=img))['img']
        np.testing.assert_array_equal(out, expected)
        assert out.dtype == np.uint8 and out.shape == img.shape
