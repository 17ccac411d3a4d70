"""Zero-shot inference at the native aspect ratio (``test_cfg.mode='native'``): each image is
resized whole to the largest patch grid within a budget (SigLIP 2 NaFlex's
``resize_to_sequence``) instead of being cut into square sliding windows."""
from typing import Dict, Optional

import torch.nn.functional as F
from torch import Tensor, nn

from ..backbones.naflex_vit import naflex_grid, resize_to_grid

NATIVE_KEYS = ('mode', 'max_num_patches')


def check_native_test_cfg(test_cfg: Optional[dict]) -> Dict:
    """Validate a ``mode='native'`` test_cfg: ``max_num_patches`` (positive int, the patch
    budget of the whole image) is required; no other key is taken.

    Returns:
        dict: a copy, with ``partial_patches='pad'`` for the segmentor's whole-image
        ``encode_decode``, which every mode keeps.
    """
    test_cfg = dict(test_cfg)
    unknown = sorted(set(test_cfg) - set(NATIVE_KEYS))
    if unknown:
        raise ValueError(f"test_cfg.mode='native' takes only {list(NATIVE_KEYS)}, got "
                         f'{unknown} as well')
    budget = test_cfg.get('max_num_patches')
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise ValueError("test_cfg.mode='native' needs test_cfg.max_num_patches, a positive "
                         f'int (e.g. 256 or 1024), got {budget!r}')
    return dict(test_cfg, partial_patches='pad')


def native_aspect_logits(segmentor: nn.Module, image: Tensor, text_embeddings: Tensor) -> Tensor:
    """Query logits ``(Q, H, W)`` of one ``(3, H, W)`` image: resized whole to its NaFlex grid
    (bilinear, antialiased), one dense forward of the image tower (its positional embedding
    resized to that grid), the patch logits upsampled bilinearly back to ``(H, W)``.

    Args:
        segmentor (nn.Module): a :class:`ZeroShotSegmentor` (its ``image_encoder``,
            ``extract_feat``, ``decode_head`` and ``test_cfg``).
        image (Tensor): the normalized, unpadded image.
        text_embeddings (Tensor): ``(Q, C)`` normalized query embeddings.
    """
    patch_size = segmentor.image_encoder.patch_size
    grid = naflex_grid(*image.shape[-2:], patch_size, segmentor.test_cfg['max_num_patches'])
    resized = resize_to_grid(image[None], grid, patch_size)
    logits = segmentor.decode_head(segmentor.extract_feat(resized), text_embeddings)
    return F.interpolate(logits, size=image.shape[-2:], mode='bilinear', align_corners=False)[0]
