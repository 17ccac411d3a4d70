"""Mask sampling for masked self-distillation (images) and masked language modelling (texts).

Both draw from an explicit :class:`torch.Generator`, so that a caller that seeds it from saved
state (``MaskedSelfDistill`` seeds it from its step counter) gets the same masks after a
resume.
"""
import math
from typing import Optional, Sequence

import torch

MASK_STRATEGIES = ('random', 'block')


def random_patch_mask(batch_size: int,
                      num_patches: int,
                      ratio: float,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Uniformly random patch masking with a fixed count per image (MAE, He et al., 2022).

    Args:
        batch_size (int): Images.
        num_patches (int): Patches per image.
        ratio (float): Fraction of patches to mask, in ``(0, 1)``.
        generator (torch.Generator, optional): Random source (CPU).

    Returns:
        Tensor: ``(batch_size, num_patches)`` bool on the CPU, True = masked; every row has
        exactly ``round(ratio * num_patches)`` (at least 1, at most ``num_patches - 1``) masked.
    """
    num_masked = _num_masked(num_patches, ratio)
    order = torch.rand(batch_size, num_patches, generator=generator).argsort(dim=1)
    mask = torch.zeros(batch_size, num_patches, dtype=torch.bool)
    mask.scatter_(1, order[:, :num_masked], True)
    return mask


def block_patch_mask(batch_size: int,
                     grid: Sequence[int],
                     ratio: float,
                     generator: Optional[torch.Generator] = None,
                     min_block_patches: int = 4,
                     min_aspect: float = 0.3) -> torch.Tensor:
    """Blockwise masking (BEiT, Bao et al., ICLR 2022, Sec. 2.5), then topped up at random.

    Rectangles of random area (at least ``min_block_patches``, at most what is still missing)
    and log-uniform aspect ratio in ``[min_aspect, 1 / min_aspect]`` are masked at random
    positions until the target count is reached; when 10 rectangles in a row add nothing new,
    the remaining patches are drawn uniformly at random, so the count is always exact.

    Args:
        batch_size (int): Images.
        grid (Sequence[int]): ``(h, w)`` patch grid.
        ratio (float): Fraction of patches to mask.
        generator (torch.Generator, optional): Random source (CPU).
        min_block_patches (int): Smallest rectangle. Defaults to 4 (BEiT).
        min_aspect (float): Defaults to 0.3 (BEiT).

    Returns:
        Tensor: ``(batch_size, h * w)`` bool on the CPU, exactly
        ``round(ratio * h * w)`` True per row.
    """
    height, width = grid
    num_patches = height * width
    num_masked = _num_masked(num_patches, ratio)
    log_aspect = (math.log(min_aspect), -math.log(min_aspect))
    masks = []
    for _ in range(batch_size):
        mask = torch.zeros(height, width, dtype=torch.bool)
        failures = 0
        while int(mask.sum()) < num_masked and failures < 10:
            missing = num_masked - int(mask.sum())
            low = min(min_block_patches, missing)
            area = low + float(torch.rand((), generator=generator)) * (missing - low)
            aspect = math.exp(log_aspect[0] + float(torch.rand((), generator=generator)) *
                              (log_aspect[1] - log_aspect[0]))
            block_h = min(height, max(1, round(math.sqrt(area * aspect))))
            block_w = min(width, max(1, round(math.sqrt(area / aspect))))
            top = int(torch.randint(0, height - block_h + 1, (), generator=generator))
            left = int(torch.randint(0, width - block_w + 1, (), generator=generator))
            block = mask[top:top + block_h, left:left + block_w]
            new = int((~block).sum())
            if new == 0 or new > missing:
                failures += 1
                continue
            block.fill_(True)
            failures = 0
        mask = mask.flatten()
        missing = num_masked - int(mask.sum())
        if missing > 0:
            free = (~mask).nonzero().squeeze(1)
            pick = free[torch.randperm(free.numel(), generator=generator)[:missing]]
            mask[pick] = True
        masks.append(mask)
    return torch.stack(masks)


def patch_mask(batch_size: int,
               grid: Sequence[int],
               ratio: float,
               strategy: str = 'random',
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """:func:`random_patch_mask` or :func:`block_patch_mask` by name (``MASK_STRATEGIES``)."""
    if strategy == 'random':
        return random_patch_mask(batch_size, grid[0] * grid[1], ratio, generator)
    if strategy == 'block':
        return block_patch_mask(batch_size, grid, ratio, generator)
    raise ValueError(f'unknown mask strategy {strategy!r}; choose from {MASK_STRATEGIES}')


def text_token_mask(token_ids: torch.Tensor,
                    ratio: float,
                    end_token_id: int,
                    special_token_ids: Sequence[int] = (),
                    generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Masked-language-modelling positions: ``round(ratio * n)`` (at least 1) of the ``n``
    content tokens of every text, uniformly at random.

    Content tokens are those before the first ``end_token_id`` that are not in
    ``special_token_ids`` (e.g. CLIP's start-of-text); the end token and the padding after it
    are never masked. A text without content tokens gets no mask.

    Args:
        token_ids (Tensor): ``(N, L)`` token ids.
        ratio (float): Fraction of content tokens to mask, in ``(0, 1]``.
        end_token_id (int): End-of-text id.
        special_token_ids (Sequence[int]): Ids never masked.
        generator (torch.Generator, optional): Random source (CPU).

    Returns:
        Tensor: ``(N, L)`` bool on ``token_ids``' device, True = masked.
    """
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f'text mask ratio must be in (0, 1], got {ratio}')
    ids = token_ids.cpu()
    is_end = ids == end_token_id
    # Positions at or after the first end token are not content.
    after_end = is_end.int().cumsum(dim=1) > 0
    content = ~after_end
    for special in special_token_ids:
        content &= ids != special
    num_content = content.sum(dim=1)
    num_masked = torch.where(num_content > 0,
                             (ratio * num_content.float()).round().long().clamp(min=1),
                             torch.zeros_like(num_content))
    # Random scores; non-content positions sort last, so the first num_masked are content.
    scores = torch.rand(ids.shape, generator=generator).masked_fill(~content, 2.0)
    rank = scores.argsort(dim=1).argsort(dim=1)
    mask = rank < num_masked.unsqueeze(1)
    return mask.to(token_ids.device)


def _num_masked(num_patches: int, ratio: float) -> int:
    if not 0.0 < ratio < 1.0:
        raise ValueError(f'mask ratio must be in (0, 1), got {ratio}')
    if num_patches < 2:
        raise ValueError(f'masking needs at least 2 patches, got {num_patches}')
    return min(num_patches - 1, max(1, round(ratio * num_patches)))
