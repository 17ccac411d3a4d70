import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

import silc_seg  # noqa: F401
from silc_seg.datasets.transforms import (HueSafeColorJitter, PackSILCInputs, TokenizeCaption,
                                          adjust_hue)

init_default_scope('mmseg')


def _coordinate_image(size=200):
    """BGR image whose pixels encode their own position: B = x, G = y, R = 0."""
    yy, xx = np.mgrid[0:size, 0:size]
    return np.stack([xx, yy, np.zeros_like(xx)], -1).astype(np.uint8)


def _crop_only(cfg_pipeline):
    """Keep only the crops of a MultiView pipeline, with nearest interpolation."""
    multiview = dict(cfg_pipeline[0])
    views = []
    for view in multiview['transforms']:
        crop = dict(view[0], interpolation='nearest', backend='cv2')
        views.append([crop])
    multiview['transforms'] = views
    return Compose([multiview, dict(cfg_pipeline[-1])])


@pytest.mark.slow
@pytest.mark.parametrize(
    'config',
    ['configs/_base_/datasets/demo_pretrain.py', 'configs/_base_/datasets/wds_pretrain_224.py'])
def test_multicrop_shapes_and_crop_scales(config):
    cfg = Config.fromfile(config)
    np.random.seed(0)
    size = 200
    pipeline = _crop_only(cfg.train_pipeline)
    glob_areas, loc_areas = [], []
    for _ in range(30):
        out = pipeline(dict(img=_coordinate_image(size)))['inputs']
        assert len(out['global_crops']) == cfg.num_global_crops == 2
        assert len(out['local_crops']) == cfg.num_local_crops == 6
        for group, crop_size, areas in (('global_crops', cfg.global_crop_size, glob_areas),
                                        ('local_crops', cfg.local_crop_size, loc_areas)):
            for view in out[group]:
                assert view.shape == (3, crop_size, crop_size)
                assert view.dtype == torch.uint8
                xs, ys = view[0].long(), view[1].long()
                # nearest resize keeps the border pixels: the crop spans max - min + 1.
                width = (xs.max() - xs.min() + 1).item()
                height = (ys.max() - ys.min() + 1).item()
                areas.append(width * height / size**2)
        # Contrastive views (when the config has them) are crops of the global views' size.
        for view in out.get('contrastive_crops', []):
            assert view.shape == (3, cfg.global_crop_size, cfg.global_crop_size)
        assert len(out.get('contrastive_crops', [])) == cfg.get('num_contrastive_crops', 0)
    lo, hi = cfg.global_crop_scale
    # +-2 px per side of slack for rounding of the crop box.
    assert lo * 0.93 <= min(glob_areas) and max(glob_areas) <= hi
    lo, hi = cfg.local_crop_scale
    assert lo * 0.85 <= min(loc_areas) and max(loc_areas) <= hi * 1.05
    assert np.mean(loc_areas) < np.mean(glob_areas)


def test_full_dino_pipeline_runs_with_negative_hue():
    cfg = Config.fromfile('configs/_base_/datasets/wds_pretrain_224.py')
    # The CPU variant: colour jitter with negative hue shifts runs in the worker.
    pipeline = Compose(cfg.cpu_train_pipeline[:1] + cfg.cpu_train_pipeline[2:])
    np.random.seed(3)
    rng = np.random.default_rng(0)
    for _ in range(4):
        img = rng.integers(0, 256, (120, 150, 3), dtype=np.uint8)
        out = pipeline(dict(img=img))['inputs']
        assert [tuple(v.shape) for v in out['global_crops']] == [(3, 224, 224)] * 2
        assert [tuple(v.shape) for v in out['local_crops']] == [(3, 96, 96)] * 6
        assert [tuple(v.shape) for v in out['contrastive_crops']] == [(3, 224, 224)] * 2


def test_adjust_hue_negative_shift_and_symmetry():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    with pytest.raises(OverflowError):
        np.uint8(-0.1 * 255)  # the mmcv.adjust_hue failure under numpy 2
    shifted = adjust_hue(img, -0.1)
    assert shifted.dtype == np.uint8 and shifted.shape == img.shape
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV_FULL).astype(int)
    hsv_shifted = cv2.cvtColor(shifted, cv2.COLOR_BGR2HSV_FULL).astype(int)
    # Hue rotates down by 0.1 turn where saturation is high enough to be stable.
    stable = (hsv[..., 1] > 100) & (hsv[..., 2] > 100)
    delta = (hsv_shifted[..., 0] - hsv[..., 0]) % 256
    expected = round(-0.1 * 256) % 256
    circular = np.minimum(np.abs(delta - expected), 256 - np.abs(delta - expected))
    assert np.median(circular[stable]) <= 3
    # A shift and its opposite nearly cancel; zero is the identity up to HSV rounding.
    back = adjust_hue(adjust_hue(img, 0.2), -0.2)
    assert np.abs(back.astype(int) - img.astype(int)).mean() < 4
    np.testing.assert_array_equal(adjust_hue(img, 0.0), img)
    # Pure red rotated by half a turn is cyan.
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 2] = 255
    cyan = adjust_hue(red, -0.5)[0, 0]
    assert cyan[2] < 10 and cyan[0] > 245 and cyan[1] > 245
    with pytest.raises(ValueError):
        adjust_hue(img, 0.7)


def test_hue_safe_color_jitter_matches_mmpretrain_without_hue():
    from mmpretrain.datasets.transforms import ColorJitter
    img = np.random.default_rng(1).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    kwargs = dict(brightness=0.4, contrast=0.4, saturation=0.2)
    np.random.seed(5)
    ours = HueSafeColorJitter(**kwargs)(dict(img=img.copy()))['img']
    np.random.seed(5)
    ref = ColorJitter(**kwargs)(dict(img=img.copy()))['img']
    np.testing.assert_array_equal(ours, ref)
    jitter = HueSafeColorJitter(hue=0.5)
    for seed in range(20):  # both signs of the hue shift
        np.random.seed(seed)
        out = jitter(dict(img=img.copy()))['img']
        assert out.shape == img.shape and out.dtype == np.uint8


class _CharTokenizer:
    """Tiny stand-in tokenizer: character codes padded to a fixed length."""

    def __call__(self, texts):
        rows = torch.zeros(len(texts), 8, dtype=torch.long)
        for i, text in enumerate(texts):
            codes = [ord(c) for c in text[:8]]
            rows[i, :len(codes)] = torch.tensor(codes)
        return rows


def test_tokenize_caption_and_pack_val_sample():
    results = dict(
        img=np.zeros((10, 12, 3), np.uint8),
        caption='red dots',
        img_path='x.png',
        sample_idx=3,
        gt_label=[2, 5])
    results = TokenizeCaption(_CharTokenizer())(results)
    assert results['text'].tolist() == [ord(c) for c in 'red dots']
    packed = PackSILCInputs()(results)
    assert packed['inputs']['image'].shape == (3, 10, 12)
    assert packed['inputs']['text'].dtype == torch.long
    sample = packed['data_samples']
    assert sample.caption == 'red dots' and sample.sample_idx == 3
    assert sample.gt_label.tolist() == [2, 5]
    with pytest.raises(TypeError, match='caption must be a str'):
        TokenizeCaption(_CharTokenizer())(dict(caption=None))


def test_pack_rejects_inconsistent_views():
    views = [np.zeros((8, 8, 3), np.uint8)] * 2 + [np.zeros((4, 4, 3), np.uint8)]
    packed = PackSILCInputs(num_global_crops=2)(dict(img=views))['inputs']
    assert len(packed['global_crops']) == 2 and len(packed['local_crops']) == 1
    with pytest.raises(ValueError, match='same shape'):
        PackSILCInputs(num_global_crops=1)(dict(img=views))
    with pytest.raises(ValueError, match='local crops'):
        PackSILCInputs(num_global_crops=3)(dict(img=views))
    with pytest.raises(ValueError, match='local crops'):
        PackSILCInputs(num_global_crops=4, require_local_crops=False)(dict(img=views))
    # Single-view objectives: global crops only, no local_crops key.
    packed = PackSILCInputs(
        num_global_crops=1, require_local_crops=False)(dict(img=views[:1]))['inputs']
    assert set(packed) == {'global_crops'} and len(packed['global_crops']) == 1
