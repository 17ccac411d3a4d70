"""BatchPhotometricAugment (on the device) against the CPU transforms it replaces.

The CPU side is the per-view photometric part of ``cpu_train_pipeline`` of
``configs/_base_/datasets/wds_pretrain_224.py`` (mmcv ``RandomFlip``, ``RandomApply`` of our
``HueSafeColorJitter``, mmpretrain ``RandomGrayscale``, ``GaussianBlur`` and ``Solarize``), the
device side the ``device_augments`` of the same file. Both augment the same image many times;
per-sample statistics of the outputs (channel means, luma spread, chroma, edge energy,
left-right balance, bright pixels) must follow the same distributions (two-sample KS test), and
the test must notice a device recipe with one range or probability changed.
"""
import random

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.registry import DefaultScope
from scipy.stats import ks_2samp

from silc_seg.models.data_preprocessors import BatchPhotometricAugment, SILCDataPreprocessor
from silc_seg.models.data_preprocessors.batch_photometric_augment import gaussian_blur, rotate_hue
from silc_seg.registry import MODELS

CONFIG = 'configs/_base_/datasets/wds_pretrain_224.py'
NUM_DRAWS = 1500
# Same distributions: every statistic's p-value above this (fixed seeds: not flaky).
SAME = 1e-4
# A changed parameter: some statistic's p-value below this.
DIFFERENT = 1e-5


def _image(size=24):
    """RGB uint8 test image: a red ramp left to right, green top to bottom, a blue checker,
    and a bright patch (solarization) and a dark one."""
    y, x = np.mgrid[0:size, 0:size]
    img = np.stack([
        40 + 180 * x / (size - 1), 30 + 150 * y / (size - 1),
        np.where((x // 4 + y // 4) % 2, 200, 60)
    ], -1)
    img[2:8, 14:22] = (250, 235, 220)
    img[16:22, 3:9] = (15, 25, 10)
    return img.round().astype(np.uint8)


def statistics(images: torch.Tensor) -> dict:
    """Per-sample statistics of ``(N, 3, H, W)`` RGB images on the 0-255 scale.

    Ratios where a factor should act alone: brightness scales everything, so contrast shows as
    luma spread over luma mean, saturation as chroma over luma mean, blur as edge energy over
    luma spread. (The CPU side also rounds down to ``uint8`` after each PIL step, about half a
    level each; ratios keep that far below what a changed parameter does.)
    """
    images = images.double()
    luma = 0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]
    mean = luma.mean((1, 2)).clamp_min(1)
    spread = luma.flatten(1).std(1).clamp_min(1e-3)
    channel_means = images.mean((2, 3))
    half = images.size(-1) // 2
    left, right = images[:, :, :, :half].mean((1, 2, 3)), images[:, :, :, half:].mean((1, 2, 3))
    return dict(
        luma_mean=mean,
        red_share=channel_means[:, 0] / channel_means.sum(1).clamp_min(1),
        green_share=channel_means[:, 1] / channel_means.sum(1).clamp_min(1),
        contrast=spread / mean,
        saturation=(images.max(1).values - images.min(1).values).mean((1, 2)) / mean,
        sharpness=(luma[:, :, 1:] - luma[:, :, :-1]).abs().mean((1, 2)) / spread,
        left_right=(left - right) / (left + right).clamp_min(1),
        bright=(luma > 180).double().mean((1, 2)),
        dark=(luma < 50).double().mean((1, 2)),
    )


def _cpu_views():
    """The photometric transforms (after the crop) of the three kinds of CPU views."""
    cfg = Config.fromfile(CONFIG)
    return dict(
        global_1=cfg.cpu_global_view_1[1:],
        global_2=cfg.cpu_global_view_2[1:],
        local=cfg.cpu_local_view[1:]), cfg.device_augments


def _cpu_outputs(transforms, img_rgb, seed):
    pipeline = Compose(transforms)
    np.random.seed(seed)
    random.seed(seed)  # mmcv's RandomGrayscale draws from Python's generator
    outputs = []
    for _ in range(NUM_DRAWS):
        bgr = np.ascontiguousarray(img_rgb[..., ::-1])
        out = pipeline(dict(img=bgr, img_shape=bgr.shape[:2]))['img']
        outputs.append(torch.from_numpy(np.ascontiguousarray(out[..., ::-1].transpose(2, 0, 1))))
    return torch.stack(outputs)


def _device_outputs(cfg, img_rgb, seed):
    torch.manual_seed(seed)
    augment = MODELS.build(cfg)
    batch = torch.from_numpy(img_rgb.transpose(2, 0, 1).copy()).float()
    return augment(batch.unsqueeze(0).repeat(NUM_DRAWS, 1, 1, 1))


def _p_values(cpu, device):
    cpu_stats, device_stats = statistics(cpu), statistics(device)
    return {
        name: ks_2samp(cpu_stats[name].numpy(), device_stats[name].numpy()).pvalue
        for name in cpu_stats
    }


@pytest.fixture(scope='module')
def cpu_samples():
    with DefaultScope.overwrite_default_scope('mmseg'):  # the configs' scope
        return _cpu_samples()


def _cpu_samples():
    views, device_cfgs = _cpu_views()
    img = _image()
    return img, device_cfgs, {
        name: _cpu_outputs(transforms, img, seed)
        for seed, (name, transforms) in enumerate(views.items())
    }


def _device_cfg(device_cfgs, view):
    return dict(
        global_1=device_cfgs['global_crops'][0],
        global_2=device_cfgs['global_crops'][1],
        local=device_cfgs['local_crops'])[view]


@pytest.mark.slow
@pytest.mark.parametrize('view', ['global_1', 'global_2', 'local'])
def test_device_augment_matches_cpu_transforms(cpu_samples, view):
    img, device_cfgs, cpu = cpu_samples
    with DefaultScope.overwrite_default_scope('mmseg'):
        device = _device_outputs(_device_cfg(device_cfgs, view), img, seed=10)
    p_values = _p_values(cpu[view], device)
    assert min(p_values.values()) > SAME, p_values


@pytest.mark.slow
@pytest.mark.parametrize('view,change', [
    ('global_1', dict(brightness=0.6)),
    ('global_1', dict(contrast=0.2)),
    ('global_1', dict(saturation=0.6)),
    ('local', dict(hue=0.25)),
    ('global_1', dict(jitter_prob=0.6)),
    ('local', dict(grayscale_prob=0.35)),
    ('local', dict(flip_prob=0.8)),
    ('global_1', dict(blur_sigma=(0.1, 1.0))),
    ('local', dict(blur_prob=0.7)),
    ('global_2', dict(solarize_prob=0.35)),
    ('global_2', dict(solarize_threshold=80)),
])
def test_statistical_test_notices_a_wrong_parameter(cpu_samples, view, change):
    img, device_cfgs, cpu = cpu_samples
    with DefaultScope.overwrite_default_scope('mmseg'):
        device = _device_outputs(dict(_device_cfg(device_cfgs, view), **change), img, seed=10)
    p_values = _p_values(cpu[view], device)
    assert min(p_values.values()) < DIFFERENT, p_values


def test_rotate_hue_known_colours():
    # Written out: red, green, blue, gray, orange (hue 1/12) and a dull pink, as (R, G, B).
    colours = torch.tensor(
        [[255, 0, 0], [0, 255, 0], [0, 0, 255], [90, 90, 90], [255, 127.5, 0], [200, 100, 150]],
        dtype=torch.float64)
    images = colours.T.reshape(1, 3, 6, 1)

    def rotated(shift):
        return rotate_hue(images, torch.tensor([shift], dtype=torch.float64))[0, :, :, 0].T

    torch.testing.assert_close(rotated(0.0), colours)
    # A third of a turn: red -> green -> blue -> red; gray stays; orange (30 deg) -> 150 deg
    # = (0, 255, 127.5); pink (330 deg, V 200, C 100) -> 90 deg = (150, 200, 100).
    expected = torch.tensor(
        [[0, 255, 0], [0, 0, 255], [255, 0, 0], [90, 90, 90], [0, 255, 127.5], [150, 200, 100]],
        dtype=torch.float64)
    torch.testing.assert_close(rotated(1 / 3), expected)
    torch.testing.assert_close(rotated(-2 / 3), expected)
    # Half a turn gives the complementary colour: red -> cyan.
    torch.testing.assert_close(rotated(0.5)[0], torch.tensor([0, 255, 255.], dtype=torch.float64))
    # A shift and its opposite cancel on random colours.
    rgb = torch.rand(3, 3, 4, 4, dtype=torch.float64) * 255
    shift = torch.tensor([0.1, -0.25, 0.4], dtype=torch.float64)
    torch.testing.assert_close(rotate_hue(rotate_hue(rgb, shift), -shift), rgb)


def test_gaussian_blur_is_a_per_sample_gaussian():
    torch.manual_seed(0)
    images = torch.rand(3, 2, 9, 11, dtype=torch.float64) * 255
    sigma = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    out = gaussian_blur(images, sigma, max_sigma=2.0)
    # Written out: 2-D weights exp(-(dx^2 + dy^2) / (2 s^2)), radius 6, replicated borders.
    radius = 6
    for n in range(3):
        offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
        w = torch.exp(-(offsets[:, None]**2 + offsets[None]**2) / (2 * sigma[n]**2))
        w = w / w.sum()
        ys = torch.arange(9)[:, None, None, None] + offsets.long()[None, None, :, None]
        xs = torch.arange(11)[None, :, None, None] + offsets.long()[None, None, None, :]
        patch = images[n][:, ys.clamp(0, 8), xs.clamp(0, 10)]  # (C, 9, 11, 13, 13)
        torch.testing.assert_close(out[n], (patch * w).sum((-1, -2)))


def test_preprocessor_augments_training_views_only():
    preprocessor = SILCDataPreprocessor(
        mean=(0, 0, 0),
        std=(1, 1, 1),
        bgr_to_rgb=True,
        batch_augments=dict(global_crops=[
            dict(type='BatchPhotometricAugment', flip_prob=1.0, jitter_prob=0, grayscale_prob=0),
            dict(
                type='BatchPhotometricAugment',
                flip_prob=0,
                jitter_prob=0,
                grayscale_prob=1.0,
                grayscale_weights=(1, 0, 0))
        ]))
    views = [torch.randint(0, 256, (2, 3, 4, 5), dtype=torch.uint8) for _ in range(2)]
    local = [torch.randint(0, 256, (2, 3, 2, 2), dtype=torch.uint8) for _ in range(3)]
    data = dict(inputs=dict(global_crops=views, local_crops=local))
    out = preprocessor(data, training=True)['inputs']
    rgb = [v.flip(1).float() for v in views]
    # View 1: flipped left-right; view 2: gray = its red channel (weights 1, 0, 0).
    torch.testing.assert_close(out['global_crops'][:2], rgb[0].flip(-1))
    torch.testing.assert_close(out['global_crops'][2:], rgb[1][:, :1].expand(-1, 3, -1, -1))
    torch.testing.assert_close(out['local_crops'], torch.cat([v.flip(1).float() for v in local]))
    # Validation (training=False): no augmentation.
    out = preprocessor(data, training=False)['inputs']
    torch.testing.assert_close(out['global_crops'], torch.cat(rgb))
    with pytest.raises(ValueError, match='one per view'):
        preprocessor(dict(inputs=dict(global_crops=views[:1])), training=True)
    with pytest.raises(KeyError, match='not one of'):
        SILCDataPreprocessor(batch_augments=dict(image=dict(type='BatchPhotometricAugment')))


def test_augment_refuses_bad_input_and_ranges():
    with pytest.raises(ValueError, match='float RGB'):
        BatchPhotometricAugment()(torch.zeros(2, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match='hue'):
        BatchPhotometricAugment(hue=0.7)
    with pytest.raises(ValueError, match='blur_prob'):
        BatchPhotometricAugment(blur_prob=1.5)
