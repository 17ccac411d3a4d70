"""Linear probe of frozen patch features (silc_seg.evaluation.linear_probe)."""
import numpy as np
import pytest
import torch
from PIL import Image

from silc_seg.evaluation.linear_probe import (fit_linear_probe, linear_probe_miou, mean_iou,
                                              patch_class_histograms, probe_predict)
from silc_seg.registry import MODELS
from silc_seg.utils.demo_data import make_demo_data


def test_patch_histograms_are_pixel_fractions():
    labels = torch.tensor([[[0, 0, 1, 1], [0, 2, 1, 1], [3, 3, 255, 255], [3, 3, 255, 0]]])
    hist = patch_class_histograms(labels, (2, 2), num_classes=4)
    assert hist.shape == (1, 2, 2, 4)
    torch.testing.assert_close(hist[0, 0, 0], torch.tensor([0.75, 0.0, 0.25, 0.0]))
    torch.testing.assert_close(hist[0, 0, 1], torch.tensor([0.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(hist[0, 1, 1], torch.tensor([1.0, 0.0, 0.0, 0.0]))  # 3 ignored


def test_mean_iou_written_out():
    pred = torch.tensor([0, 0, 1, 1, 2, 2])
    labels = torch.tensor([0, 1, 1, 1, 2, 255])
    # class 0: inter 1, union 2; class 1: inter 2, union 3; class 2: inter 1, union 1.
    scores = mean_iou(pred, labels, 3)
    assert abs(scores['mIoU'] - 100 * (1 / 2 + 2 / 3 + 1) / 3) < 1e-9
    assert abs(scores['aAcc'] - 100 * 4 / 5) < 1e-9


def test_probe_separates_linearly_separable_patches():
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (6, 4, 4))
    # Features that encode the label of each patch (plus noise) in 8 channels.
    means = torch.randn(3, 8) * 3
    features = means[labels].permute(0, 3, 1, 2) + 0.1 * torch.randn(6, 8, 4, 4)
    pixel_labels = labels.repeat_interleave(4, 1).repeat_interleave(4, 2)
    targets = patch_class_histograms(pixel_labels, (4, 4), 3)
    layer = fit_linear_probe(features, targets, steps=200)
    pred = probe_predict(layer, features, (4, 4))
    assert torch.equal(pred, labels)


@pytest.mark.slow
def test_linear_probe_on_demo_split(tmp_path):
    make_demo_data(str(tmp_path), num_train=4, num_val=6, image_size=48, seed=0, num_seg_train=6)
    image = np.asarray(Image.open(tmp_path / 'seg' / 'img_dir' / 'train' / 'train_00000.png'))
    assert image.shape == (48, 48, 3)
    encoder = MODELS.build(
        dict(
            type='SILCVisionTransformer',
            arch=dict(width=32, depth=1, num_heads=2, patch_size=8),
            img_size=48,
            output_dim=16))
    scores = linear_probe_miou(encoder, str(tmp_path / 'seg'), 16, (127.0, ) * 3, (64.0, ) * 3)
    assert 0 <= scores['probe_mIoU'] <= 100 and 0 <= scores['probe_aAcc'] <= 100
