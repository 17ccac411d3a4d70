from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from silc_seg.registry import MODELS

# ITU-R 601-2 luma, as PIL's convert('L') (the degenerate image of PIL's Contrast and Color).
_LUMA = (0.299, 0.587, 0.114)


def _gray(images: torch.Tensor, weights: Sequence[float] = _LUMA) -> torch.Tensor:
    """``(N, 1, H, W)`` weighted sum of the RGB channels of ``(N, 3, H, W)`` images."""
    w = images.new_tensor(weights).view(1, 3, 1, 1)
    return (images * w).sum(1, keepdim=True)


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``factor * images + (1 - factor) * other`` clipped to 0-255 (PIL's ``ImageEnhance``)."""
    factor = factor.view(-1, 1, 1, 1)
    return (factor * images + (1 - factor) * other).clamp_(0, 255)


def rotate_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of each RGB image by its ``shift`` (in turns), keeping HSV value and
    saturation: the HSV round trip of torchvision's ``adjust_hue``, written for a batch.

    Args:
        images (Tensor): ``(N, 3, H, W)`` RGB, 0-255.
        shift (Tensor): ``(N, )`` hue shifts in turns.

    Returns:
        Tensor: ``(N, 3, H, W)``.
    """
    r, g, b = images.unbind(1)
    value = images.amax(1)
    chroma = value - images.amin(1)
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    # Hue in sextants [0, 6), from the largest channel (red first on ties, as argmax).
    hue = torch.where(value == r, (g - b) / safe,
                      torch.where(value == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
    hue = (hue + 6 * shift.view(-1, 1, 1).to(images.dtype)) % 6
    # Channel n of HSV -> RGB: V - C * clamp(min(k, 4 - k), 0, 1), k = (hue + n) mod 6.
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = (hue + n) % 6
        channels.append(value - chroma * torch.clamp(torch.minimum(k, 4 - k), 0, 1))
    return torch.stack(channels, 1)


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, max_sigma: float) -> torch.Tensor:
    """Blur each image with its own ``sigma`` (a separable Gaussian, edges replicated).

    Args:
        images (Tensor): ``(N, C, H, W)``.
        sigma (Tensor): ``(N, )`` standard deviations in pixels (PIL's ``GaussianBlur`` radius).
        max_sigma (float): Upper bound of ``sigma``: the kernels reach ``3 * max_sigma``.

    Returns:
        Tensor: ``(N, C, H, W)``.
    """
    num, channels, height, width = images.shape
    radius = max(1, int(3 * max_sigma + 0.5))
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    kernel = torch.exp(-0.5 * (offsets / sigma.view(-1, 1).to(images.dtype))**2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(channels, 0)
    x = images.reshape(1, num * channels, height, width)
    x = F.pad(x, (radius, radius, 0, 0), mode='replicate')
    x = F.conv2d(x, kernel.view(-1, 1, 1, 2 * radius + 1), groups=num * channels)
    x = F.pad(x, (0, 0, radius, radius), mode='replicate')
    x = F.conv2d(x, kernel.view(-1, 1, 2 * radius + 1, 1), groups=num * channels)
    return x.view(num, channels, height, width)


def _factor_range(value: float, name: str, center: float = 1.0) -> tuple:
    if value < 0:
        raise ValueError(f'{name} must be >= 0, got {value}')
    return (max(0.0, center - value), center + value) if center else (-value, value)


@MODELS.register_module()
class BatchPhotometricAugment(nn.Module):
    """DINO's photometric augmentation of a batch of crops, on the device, per-sample draws.

    The batched counterpart of the CPU transforms of our multi-crop recipe
    (``configs/_base_/datasets/wds_pretrain_224.py``, DINO's ``DataAugmentationDINO``): in this
    order, horizontal flip (``RandomFlip``); with ``jitter_prob`` a colour jitter
    (``HueSafeColorJitter`` in ``RandomApply``: brightness, contrast, saturation and hue factors
    uniform in ``[1 - b, 1 + b]`` ... ``[-h, h]``, applied in a random order per sample, as
    mmpretrain's ``ColorJitter`` and torchvision's); grayscale (``RandomGrayscale``); Gaussian
    blur with sigma uniform in ``blur_sigma`` (``mmpretrain.GaussianBlur``, PIL's radius);
    solarization above ``solarize_threshold`` (``mmpretrain.Solarize``). Every sample draws its
    own parameters from the global torch generator of the images' device, so dataloader workers
    only decode and crop.

    Args:
        flip_prob (float): Horizontal flip probability. Defaults to 0.5.
        jitter_prob (float): Probability of the colour jitter. Defaults to 0.8.
        brightness, contrast, saturation (float): Factor spreads around 1. Defaults to
            0.4, 0.4, 0.2.
        hue (float): Hue shift spread, in turns (at most 0.5). Defaults to 0.1.
        grayscale_prob (float): Probability of the grayscale conversion. Defaults to 0.2.
        grayscale_weights (Sequence[float]): RGB weights of the gray value, normalised to sum
            1 (mmcv's ``RandomGrayscale`` ``channel_weights`` reversed: it takes them in BGR).
            Defaults to (0.2989, 0.587, 0.114).
        blur_prob (float): Probability of the blur. Defaults to 0.
        blur_sigma (Sequence[float]): Range of the blur's sigma in pixels. Defaults to (0.1, 2.0).
        solarize_prob (float): Probability of the solarization. Defaults to 0.
        solarize_threshold (float): Values at or above it are inverted (0-255 scale).
            Defaults to 128.
    """

    def __init__(self,
                 flip_prob: float = 0.5,
                 jitter_prob: float = 0.8,
                 brightness: float = 0.4,
                 contrast: float = 0.4,
                 saturation: float = 0.2,
                 hue: float = 0.1,
                 grayscale_prob: float = 0.2,
                 grayscale_weights: Sequence[float] = (0.2989, 0.587, 0.114),
                 blur_prob: float = 0.0,
                 blur_sigma: Sequence[float] = (0.1, 2.0),
                 solarize_prob: float = 0.0,
                 solarize_threshold: float = 128) -> None:
        super().__init__()
        for name, prob in dict(
                flip_prob=flip_prob,
                jitter_prob=jitter_prob,
                grayscale_prob=grayscale_prob,
                blur_prob=blur_prob,
                solarize_prob=solarize_prob).items():
            if not 0 <= prob <= 1:
                raise ValueError(f'{name} must be in [0, 1], got {prob}')
        if not 0 <= hue <= 0.5:
            raise ValueError(f'hue must be in [0, 0.5], got {hue}')
        if len(blur_sigma) != 2 or not 0 < blur_sigma[0] <= blur_sigma[1]:
            raise ValueError(f'blur_sigma must be (low, high) with 0 < low <= high, '
                             f'got {blur_sigma}')
        if len(grayscale_weights) != 3:
            raise ValueError(f'grayscale_weights needs 3 values, got {grayscale_weights}')
        self.flip_prob = flip_prob
        self.jitter_prob = jitter_prob
        self.ranges = (_factor_range(brightness,
                                     'brightness'), _factor_range(contrast, 'contrast'),
                       _factor_range(saturation,
                                     'saturation'), _factor_range(hue, 'hue', center=0.0))
        self.grayscale_prob = grayscale_prob
        self.grayscale_weights = tuple(grayscale_weights)
        self.blur_prob = blur_prob
        self.blur_sigma = tuple(float(v) for v in blur_sigma)
        self.solarize_prob = solarize_prob
        self.solarize_threshold = solarize_threshold

    @staticmethod
    def _uniform(num: int, low: float, high: float, device) -> torch.Tensor:
        return low + (high - low) * torch.rand(num, device=device)

    def _jitter(self, images: torch.Tensor) -> torch.Tensor:
        """Colour jitter of all ``images``, each with its own factors and order."""
        num, device = images.size(0), images.device
        factors = [self._uniform(num, low, high, device) for low, high in self.ranges]
        order = torch.rand(num, 4, device=device).argsort(1)  # a random permutation each
        for step in range(4):
            for op in range(4):
                index = (order[:, step] == op).nonzero().squeeze(1)
                if index.numel() == 0:
                    continue
                x, factor = images[index], factors[op][index]
                if op == 0:  # brightness: blend with black
                    x = _blend(x, torch.zeros_like(x), factor)
                elif op == 1:  # contrast: blend with the mean gray level
                    x = _blend(x, _gray(x).mean((2, 3), keepdim=True), factor)
                elif op == 2:  # saturation: blend with the gray image
                    x = _blend(x, _gray(x), factor)
                else:  # hue: rotate
                    x = rotate_hue(x, factor).clamp_(0, 255)
                images[index] = x
        return images

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Augment ``(N, 3, H, W)`` RGB float images on the 0-255 scale.

        Args:
            images (Tensor): The crops of one view, ``(N, 3, H, W)``.

        Returns:
            Tensor: The augmented crops, same shape and dtype (a new tensor).
        """
        if images.dim() != 4 or images.size(1) != 3 or not images.is_floating_point():
            raise ValueError('BatchPhotometricAugment needs (N, 3, H, W) float RGB images, got '
                             f'{images.dtype} {tuple(images.shape)}')
        num, device = images.size(0), images.device
        images = images.clone()

        def chosen(prob):
            return (torch.rand(num, device=device) < prob).view(-1, 1, 1, 1)

        if self.flip_prob > 0:
            images = torch.where(chosen(self.flip_prob), images.flip(-1), images)
        if self.jitter_prob > 0:
            index = (torch.rand(num, device=device) < self.jitter_prob).nonzero().squeeze(1)
            if index.numel():
                images[index] = self._jitter(images[index])
        if self.grayscale_prob > 0:
            weights = [w / sum(self.grayscale_weights) for w in self.grayscale_weights]
            gray = _gray(images, weights).clamp_(0, 255).expand_as(images)
            images = torch.where(chosen(self.grayscale_prob), gray, images)
        if self.blur_prob > 0:
            sigma = self._uniform(num, *self.blur_sigma, device)
            blurred = gaussian_blur(images, sigma, self.blur_sigma[1])
            images = torch.where(chosen(self.blur_prob), blurred, images)
        if self.solarize_prob > 0:
            solarized = torch.where(images >= self.solarize_threshold, 255 - images, images)
            images = torch.where(chosen(self.solarize_prob), solarized, images)
        return images

    def extra_repr(self) -> str:
        return (f'flip_prob={self.flip_prob}, jitter_prob={self.jitter_prob}, '
                f'ranges={self.ranges}, grayscale_prob={self.grayscale_prob}, '
                f'blur_prob={self.blur_prob}, blur_sigma={self.blur_sigma}, '
                f'solarize_prob={self.solarize_prob}')
