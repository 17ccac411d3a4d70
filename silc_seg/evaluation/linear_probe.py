"""Linear probe of frozen patch features on a segmentation split (a dense-feature measure).

The image tower is frozen; its last-block patch tokens (after ``ln_post``, before the joint
projection: what :meth:`SILCVisionTransformer.forward` returns) feed one linear layer
``width -> num_classes`` per patch, trained on a train split and scored by pixel mIoU on a
val split. The probe is fitted at patch level against each patch's class histogram (the
fraction of its pixels in every class): with logits constant over a patch, that cross-entropy
equals the mean pixel cross-entropy over the patch, at a fraction of the cost. Prediction
upsamples the patch logits bilinearly to the label size.
"""
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def load_seg_split(root: str,
                   split: str,
                   max_images: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, 3, H, W)`` uint8 RGB and labels ``(N, H, W)`` long of an mmseg layout
    ``root/img_dir/<split>``, ``root/ann_dir/<split>`` (same file names)."""
    img_dir = osp.join(root, 'img_dir', split)
    ann_dir = osp.join(root, 'ann_dir', split)
    if not osp.isdir(img_dir) or not osp.isdir(ann_dir):
        raise FileNotFoundError(f'no segmentation split {split!r} under {root} (expected '
                                f'{img_dir} and {ann_dir}; python tools/misc/make_demo_data.py '
                                'writes them)')
    names = sorted(name for name in os.listdir(img_dir) if name.endswith('.png'))
    if max_images:
        names = names[:max_images]
    if not names:
        raise FileNotFoundError(f'no .png image in {img_dir}')
    images = np.stack([np.asarray(Image.open(osp.join(img_dir, n)).convert('RGB')) for n in names])
    labels = np.stack([np.asarray(Image.open(osp.join(ann_dir, n))) for n in names])
    return (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
            torch.from_numpy(labels.astype(np.int64)))


@torch.no_grad()
def patch_features(image_encoder: torch.nn.Module,
                   images: torch.Tensor,
                   mean: Sequence[float],
                   std: Sequence[float],
                   batch_size: int = 50) -> torch.Tensor:
    """``(N, C, h, w)`` last-block patch features of RGB uint8 ``images`` (normalized with
    ``mean`` / ``std`` on the 0-255 scale), the encoder in eval mode."""
    image_encoder.eval()
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    out = []
    for start in range(0, images.shape[0], batch_size):
        batch = (images[start:start + batch_size].float() - mean_t) / std_t
        out.append(image_encoder(batch)[-1])
    return torch.cat(out)


def patch_class_histograms(labels: torch.Tensor,
                           grid: Tuple[int, int],
                           num_classes: int,
                           ignore_index: int = 255) -> torch.Tensor:
    """``(N, h, w, K)`` fraction of each patch's (non-ignored) pixels in each class, for
    labels ``(N, H, W)`` whose size is ``grid`` times the patch size."""
    n, height, width = labels.shape
    gh, gw = grid
    if height % gh or width % gw:
        raise ValueError(f'labels of size {height}x{width} do not tile a {gh}x{gw} grid')
    valid = labels != ignore_index
    one_hot = F.one_hot(labels.clamp(0, num_classes - 1), num_classes).float()
    one_hot = one_hot * valid.unsqueeze(-1)
    pooled = one_hot.view(n, gh, height // gh, gw, width // gw, num_classes).sum((2, 4))
    return pooled / pooled.sum(-1, keepdim=True).clamp_min(1.0)


def fit_linear_probe(features: torch.Tensor,
                     targets: torch.Tensor,
                     steps: int = 300,
                     lr: float = 0.05,
                     weight_decay: float = 1e-4,
                     seed: int = 0) -> torch.nn.Linear:
    """Fit ``Linear(C, K)`` on ``(N, C, h, w)`` features against ``(N, h, w, K)`` class
    histograms by full-batch AdamW on the soft-label cross-entropy (features standardised by
    their train mean / std first, folded into the returned layer)."""
    x = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
    y = targets.reshape(-1, targets.shape[-1])
    keep = y.sum(-1) > 0
    x, y = x[keep], y[keep]
    mu, sigma = x.mean(0), x.std(0).clamp_min(1e-6)
    x = (x - mu) / sigma
    generator = torch.Generator().manual_seed(seed)
    layer = torch.nn.Linear(x.shape[1], y.shape[1])
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * 0.01)
        layer.bias.zero_()
    optimizer = torch.optim.AdamW(layer.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = -(y * F.log_softmax(layer(x), dim=-1)).sum(-1).mean()
        loss.backward()
        optimizer.step()
    folded = torch.nn.Linear(x.shape[1], y.shape[1])
    with torch.no_grad():
        folded.weight.copy_(layer.weight / sigma)
        folded.bias.copy_(layer.bias - (layer.weight * (mu / sigma)).sum(-1))
    return folded


@torch.no_grad()
def probe_predict(layer: torch.nn.Linear, features: torch.Tensor,
                  size: Tuple[int, int]) -> torch.Tensor:
    """``(N, H, W)`` class ids: patch logits upsampled bilinearly to ``size``."""
    logits = torch.einsum('nchw,kc->nkhw', features, layer.weight)
    logits = logits + layer.bias.view(1, -1, 1, 1)
    logits = F.interpolate(logits, size=size, mode='bilinear', align_corners=False)
    return logits.argmax(1)


def mean_iou(pred: torch.Tensor,
             labels: torch.Tensor,
             num_classes: int,
             ignore_index: int = 255) -> Dict[str, float]:
    """mIoU (%) over the classes present in ``labels`` or ``pred`` and pixel accuracy (%)."""
    valid = labels != ignore_index
    p, t = pred[valid], labels[valid]
    confusion = torch.bincount(
        t * num_classes + p, minlength=num_classes**2).view(num_classes, num_classes).double()
    inter = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - inter
    present = union > 0
    return dict(
        mIoU=float((inter[present] / union[present]).mean() * 100),
        aAcc=float(inter.sum() / confusion.sum() * 100))


def linear_probe_miou(image_encoder: torch.nn.Module,
                      seg_root: str,
                      num_classes: int,
                      mean: Sequence[float],
                      std: Sequence[float],
                      train_split: str = 'train',
                      val_split: str = 'val',
                      seed: int = 0) -> Dict[str, float]:
    """Fit the probe on ``train_split`` and score it on ``val_split`` (see module docstring).

    Returns:
        dict: ``probe_mIoU`` and ``probe_aAcc`` (%) on the val split.
    """
    train_images, train_labels = load_seg_split(seg_root, train_split)
    val_images, val_labels = load_seg_split(seg_root, val_split)
    train_features = patch_features(image_encoder, train_images, mean, std)
    grid = tuple(train_features.shape[-2:])
    targets = patch_class_histograms(train_labels, grid, num_classes)
    layer = fit_linear_probe(train_features, targets, seed=seed)
    val_features = patch_features(image_encoder, val_images, mean, std)
    pred = probe_predict(layer, val_features, tuple(val_labels.shape[-2:]))
    scores = mean_iou(pred, val_labels, num_classes)
    return dict(probe_mIoU=scores['mIoU'], probe_aAcc=scores['aAcc'])


__all__: List[str] = [
    'fit_linear_probe', 'linear_probe_miou', 'load_seg_split', 'mean_iou',
    'patch_class_histograms', 'patch_features', 'probe_predict'
]
