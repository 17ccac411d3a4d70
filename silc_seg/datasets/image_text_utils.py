"""Helpers shared by the image-text datasets: decoding, caption checks, skip reporting.

A bad sample (unreadable image, missing file, empty or non-text caption, broken shard) is
reported with :class:`BadSample` by the loading code, logged once as a warning and skipped by the
dataset. The number of samples skipped right before a good one travels with it as
``num_skipped`` (in the data sample's metainfo), so counts survive dataloader workers and ranks
and are summed by :class:`~silc_seg.engine.hooks.DataStatsHook`.
"""
import logging
import random
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmengine.fileio import get
from mmengine.logging import print_log


class BadSample(Exception):
    """A sample that cannot be used; ``reason`` is a short tag such as ``'corrupt_image'``."""

    def __init__(self, reason: str, source: str, detail: str = '') -> None:
        self.reason = reason
        self.source = source
        self.detail = detail
        super().__init__(f'{reason}: {source}' + (f' ({detail})' if detail else ''))


def log_skipped(err: BadSample) -> None:
    """Log a skipped sample as a warning of the current MMEngine logger."""
    print_log(f'skipping bad sample, {err}', logger='current', level=logging.WARNING)


def decode_image(data: bytes,
                 source: str,
                 color_type: str = 'color',
                 imdecode_backend: str = 'cv2') -> np.ndarray:
    """Decode encoded image bytes with ``mmcv.imfrombytes`` (BGR, ``uint8``).

    Args:
        data (bytes): Encoded image (JPEG, PNG, WebP, ...).
        source (str): Where the bytes come from, for the error message.
        color_type (str): ``mmcv.imfrombytes`` flag. Defaults to ``'color'``.
        imdecode_backend (str): ``mmcv.imfrombytes`` backend. Defaults to ``'cv2'``.

    Returns:
        np.ndarray: ``(H, W, 3)`` image.

    Raises:
        BadSample: ``'empty_image'`` or ``'corrupt_image'``.
    """
    if not data:
        raise BadSample('empty_image', source)
    try:
        img = mmcv.imfrombytes(data, flag=color_type, backend=imdecode_backend)
    except Exception as err:  # decoders raise many types on corrupt bytes
        raise BadSample('corrupt_image', source, repr(err)) from err
    if img is None or img.size == 0:
        raise BadSample('corrupt_image', source, 'decoder returned no image')
    return img


def valid_captions(captions: Sequence[Any], source: str) -> List[str]:
    """Keep the usable captions (non-empty strings after stripping).

    Args:
        captions (Sequence): Candidate captions (the main one first).
        source (str): Where they come from, for the error message.

    Returns:
        list[str]: The stripped non-empty captions, in order.

    Raises:
        BadSample: ``'invalid_caption'`` when a value is not text, ``'empty_caption'`` when none
            is left.
    """
    kept = []
    for caption in captions:
        if caption is None:
            continue
        if not isinstance(caption, str):
            raise BadSample('invalid_caption', source, f'{type(caption).__name__} {caption!r:.60}')
        caption = caption.strip()
        if caption:
            kept.append(caption)
    if not kept:
        raise BadSample('empty_caption', source)
    return kept


def valid_boxes(boxes: Any, source: str) -> List[dict]:
    """Check a sample's ``boxes`` field: a list of ``{"box": [x0, y0, x1, y1], "text": str}``
    with coordinates normalised to ``[0, 1]`` (``x0 < x1``, ``y0 < y1``) and a non-empty text
    (region captions for LocCa's referring-expression and grounded-captioning targets).

    Returns:
        list[dict]: The regions, ``box`` as four floats; ``[]`` for an empty list or None.

    Raises:
        BadSample: ``invalid_boxes`` (the dataset counts and skips the sample).
    """
    if boxes is None:
        return []
    if not isinstance(boxes, list):
        raise BadSample('invalid_boxes', source, f'expected a list, got {type(boxes).__name__}')
    regions = []
    for i, region in enumerate(boxes):
        box = region.get('box') if isinstance(region, dict) else None
        text = region.get('text') if isinstance(region, dict) else None
        try:
            coords = [float(v) for v in box]
        except (TypeError, ValueError):
            coords = []
        ok = (
            len(coords) == 4 and all(0.0 <= v <= 1.0 for v in coords) and coords[0] < coords[2]
            and coords[1] < coords[3])
        if not ok or not isinstance(text, str) or not text.strip():
            raise BadSample(
                'invalid_boxes', source,
                f'region {i} must be {{"box": [x0, y0, x1, y1] in [0, 1] with '
                f'x0 < x1 and y0 < y1, "text": non-empty str}}, got {region!r:.120}')
        regions.append(dict(box=coords, text=text.strip()))
    return regions


def pick_caption(captions: List[str]) -> str:
    """One of ``captions``, drawn with numpy's global RNG (seeded per worker by MMEngine)."""
    if len(captions) == 1:
        return captions[0]
    return captions[np.random.randint(len(captions))]


@contextmanager
def seeded_global_rngs(entropy: Sequence[int], restore: bool = True) -> Iterator[None]:
    """Seed Python's ``random``, NumPy's global RNG and torch's CPU generator from ``entropy``
    for the duration of the block and, with ``restore``, put their previous states back.

    The transforms of MMCV, MMPretrain and ours draw from these global generators. Seeding them
    from where a sample sits in its stream makes its caption choice and augmentations a function
    of that position alone, so a run resumed at a saved stream position draws the same crops as
    an uninterrupted one. Restoring the states afterwards keeps the draws of anything else (the
    model, in a process without dataloader workers) independent of the data; a dataloader worker
    runs nothing else, so it can skip that (saving and restoring NumPy's state is most of the
    cost).

    Args:
        entropy (Sequence[int]): Integers that identify the sample (any sign, any size).
        restore (bool): Put the previous states back at the end. Defaults to True.

    Yields:
        None
    """
    words = np.random.SeedSequence([int(v) % 2**63 for v in entropy]).generate_state(
        3, dtype=np.uint32)
    if restore:
        states = random.getstate(), np.random.get_state(), torch.default_generator.get_state()
    random.seed(int(words[0]))
    np.random.seed(int(words[1]))
    # The CPU generator only (torch.manual_seed also seeds every accelerator, far slower).
    torch.default_generator.manual_seed(int(words[2]))
    try:
        yield
    finally:
        if restore:
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.default_generator.set_state(states[2])


def read_file_bytes(path: str, backend_args: Optional[dict] = None) -> bytes:
    """Read ``path`` through MMEngine's file backends (local, petrel, http).

    Raises:
        BadSample: ``'missing_image'`` when it cannot be read.
    """
    try:
        return get(path, backend_args=backend_args)
    except (OSError, ValueError) as err:
        raise BadSample('missing_image', path, repr(err)) from err
