"""Procedural demo data: textured concepts whose names need local evidence.

Every concept is a colour *and* a texture (``red stripes``, ``red checks``, ``red dots``,
``plain red``, ...): the four textures of a colour have similar mean colours, so telling them
apart needs the local pattern, not the global colour. Each image tiles 2-4 regions (halves,
quadrants, a disk or square on a background) with distinct concepts; captions name all of them
in varied phrasings. Everything is drawn with numpy from a seeded generator, so the same
arguments give byte-identical files.

Layout written by :func:`make_demo_data` under ``out``::

    class_names.txt                      one concept a line, index = label id
    annotations/pretrain_train.jsonl     image, caption, extra_captions, labels (and, on every
                                         second image, boxes: see demo_boxes)
    annotations/pretrain_val.jsonl       held-out pairs (retrieval / zero-shot classification)
    images/{train,val}/*.png
    seg/img_dir/val/*.png, seg/ann_dir/val/*.png   mmseg layout, label ids 0..C-1 (the val pairs)
    seg/img_dir/train/*.png, seg/ann_dir/train/*.png   a separate labelled train split (for the
                                         linear probe of silc_seg.evaluation.linear_probe)
    meta.json                            generator version and arguments (idempotency stamp)

and, by :func:`write_demo_shards` (``make_demo_data.py --shards N``), the training pairs as
WebDataset shards for ``configs/silc/demo_silc_wds_tiny.py``::

    shards/train-{00000..N-1}.tar        <key>.png + <key>.json (caption, extra_captions)
"""
import io
import json
import os
import os.path as osp
import tarfile
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image

GENERATOR_VERSION = 2  # 2: region boxes on every second image

COLORS: Dict[str, Tuple[int, int, int]] = {
    'red': (205, 40, 40),
    'green': (40, 160, 60),
    'blue': (45, 75, 210),
    'yellow': (225, 195, 30),
}
TEXTURES = ('stripes', 'checks', 'dots', 'plain')

# How captions name a concept; the first phrase is the class name used for zero-shot.
_PHRASES = {
    'stripes': ('{c} stripes', '{c} striped pattern', 'stripes in {c}'),
    'checks': ('{c} checks', '{c} checkerboard', '{c} checkered pattern'),
    'dots': ('{c} dots', '{c} polka dots', '{c} dotted pattern'),
    'plain': ('plain {c}', 'solid {c}', 'flat {c} colour'),
}

CONCEPTS: List[Tuple[str, str]] = [(color, texture) for color in COLORS for texture in TEXTURES]
CLASS_NAMES: Tuple[str, ...] = tuple(_PHRASES[texture][0].format(c=color)
                                     for color, texture in CONCEPTS)

LAYOUTS = ('halves_v', 'halves_h', 'quadrants', 'disk', 'square')

_CAPTION_TEMPLATES = {
    2: ('a picture with {0} and {1}', '{0} next to {1}', 'an image showing {0} and {1}',
        '{1} and {0}'),
    4: ('a picture with {0}, {1}, {2} and {3}', 'four patches: {0}, {1}, {2} and {3}',
        'an image showing {3}, {2}, {1} and {0}'),
}
_SPATIAL_TEMPLATES = {
    'halves_v': '{0} on the left and {1} on the right',
    'halves_h': '{0} on top and {1} at the bottom',
    'disk': 'a circle of {1} on {0}',
    'square': 'a square of {1} on {0}',
}


def palette() -> List[List[int]]:
    """One RGB colour per class for visualization: the concept colour, darker per texture."""
    shades = {'stripes': 1.0, 'checks': 0.8, 'dots': 0.6, 'plain': 0.4}
    return [[int(v * shades[texture]) for v in COLORS[color]] for color, texture in CONCEPTS]


def render_texture(texture: str, color: Sequence[int], size: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Draw one concept over a full ``(size, size, 3)`` RGB ``uint8`` canvas.

    Period (6-10 px), phase, stripe orientation, colour tint and background tint are random,
    and pixel noise is added, so no two patches are identical.
    """
    color = np.clip(np.asarray(color) + rng.integers(-20, 21, 3), 0, 255)
    background = rng.integers(215, 246) + rng.integers(-8, 9, 3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    period = rng.uniform(6.0, 10.0)
    phase_y, phase_x = rng.uniform(0, period, 2)
    if texture == 'stripes':
        angle = rng.choice([0.0, 45.0, 90.0, 135.0]) * np.pi / 180
        coord = xx * np.cos(angle) + yy * np.sin(angle) + phase_x
        mask = (coord % period) < period / 2
    elif texture == 'checks':
        mask = ((np.floor((xx + phase_x) / (period / 2)) + np.floor(
            (yy + phase_y) / (period / 2))) % 2) == 0
    elif texture == 'dots':
        dy = (yy + phase_y) % period - period / 2
        dx = (xx + phase_x) % period - period / 2
        mask = dx**2 + dy**2 <= (period * 0.3)**2
    elif texture == 'plain':
        mask = np.ones((size, size), dtype=bool)
    else:
        raise ValueError(f'unknown texture {texture!r}; choose from {TEXTURES}')
    canvas = np.where(mask[..., None], color, background).astype(np.float32)
    canvas += rng.normal(0, 6, canvas.shape)
    return np.clip(canvas, 0, 255).astype(np.uint8)


def layout_masks(layout: str, size: int, rng: np.random.Generator) -> List[np.ndarray]:
    """Boolean region masks tiling a ``size x size`` image (background region first)."""
    yy, xx = np.mgrid[0:size, 0:size]
    if layout in ('halves_v', 'halves_h'):
        split = rng.integers(size * 3 // 8, size * 5 // 8 + 1)
        first = (xx if layout == 'halves_v' else yy) < split
        return [first, ~first]
    if layout == 'quadrants':
        cy, cx = rng.integers(size * 3 // 8, size * 5 // 8 + 1, 2)
        top, left = yy < cy, xx < cx
        return [top & left, top & ~left, ~top & left, ~top & ~left]
    if layout in ('disk', 'square'):
        radius = rng.uniform(0.22, 0.32) * size
        cy, cx = rng.uniform(radius, size - radius, 2)
        if layout == 'disk':
            inside = (yy - cy)**2 + (xx - cx)**2 <= radius**2
        else:
            inside = (np.abs(yy - cy) <= radius) & (np.abs(xx - cx) <= radius)
        return [~inside, inside]
    raise ValueError(f'unknown layout {layout!r}; choose from {LAYOUTS}')


def make_captions(layout: str,
                  concept_ids: Sequence[int],
                  rng: np.random.Generator,
                  num: int = 3) -> List[str]:
    """``num`` distinct captions naming every concept of the image, in varied phrasings."""
    captions: List[str] = []
    templates = list(_CAPTION_TEMPLATES[len(concept_ids)])
    if layout in _SPATIAL_TEMPLATES:
        templates.append(_SPATIAL_TEMPLATES[layout])
    for _ in range(num * 10):
        names = [
            _PHRASES[CONCEPTS[i][1]][rng.integers(3)].format(c=CONCEPTS[i][0]) for i in concept_ids
        ]
        caption = templates[rng.integers(len(templates))].format(*names)
        if caption not in captions:
            captions.append(caption)
        if len(captions) == num:
            break
    return captions


def make_sample(rng: np.random.Generator,
                size: int) -> Tuple[np.ndarray, np.ndarray, List[int], List[str]]:
    """One demo image.

    Returns:
        tuple: RGB image ``(size, size, 3)`` uint8, label map ``(size, size)`` uint8, the concept
        ids present (sorted) and three captions.
    """
    layout = LAYOUTS[rng.integers(len(LAYOUTS))]
    masks = layout_masks(layout, size, rng)
    concept_ids = [int(i) for i in rng.choice(len(CONCEPTS), len(masks), replace=False)]
    image = np.zeros((size, size, 3), dtype=np.uint8)
    label = np.zeros((size, size), dtype=np.uint8)
    for mask, concept_id in zip(masks, concept_ids):
        color, texture = CONCEPTS[concept_id]
        image[mask] = render_texture(texture, COLORS[color], size, rng)[mask]
        label[mask] = concept_id
    return image, label, sorted(concept_ids), make_captions(layout, concept_ids, rng)


def demo_boxes(label: np.ndarray, concept_ids: Sequence[int]) -> List[dict]:
    """The regions of a demo image for LocCa's box targets: for each concept whose region does
    not span the whole image, ``{"box": [x0, y0, x1, y1], "text": class name}``, the tight box
    of its label pixels normalised by the image side (pixel edges, so ``x1`` of the last
    column is 1)."""
    size_y, size_x = label.shape
    regions = []
    for concept_id in concept_ids:
        ys, xs = np.nonzero(label == concept_id)
        if not len(ys):
            continue
        box = [
            xs.min() / size_x,
            ys.min() / size_y, (xs.max() + 1) / size_x, (ys.max() + 1) / size_y
        ]
        if box != [0.0, 0.0, 1.0, 1.0]:
            regions.append(
                dict(box=[round(float(v), 4) for v in box], text=CLASS_NAMES[concept_id]))
    return regions


def _write_seg_split(out: str, split: str, num: int, size: int, seed: int) -> None:
    """Labelled images only (no captions): ``seg/{img_dir,ann_dir}/<split>``."""
    rng = np.random.default_rng(seed)
    for sub in ('img_dir', 'ann_dir'):
        os.makedirs(osp.join(out, 'seg', sub, split), exist_ok=True)
    for i in range(num):
        image, label, _, _ = make_sample(rng, size)
        name = f'{split}_{i:05d}.png'
        Image.fromarray(image).save(osp.join(out, 'seg', 'img_dir', split, name))
        Image.fromarray(label).save(osp.join(out, 'seg', 'ann_dir', split, name))


def _write_split(out: str, split: str, num: int, size: int, seed: int, with_seg: bool) -> None:
    rng = np.random.default_rng(seed)
    img_dir = osp.join(out, 'images', split)
    os.makedirs(img_dir, exist_ok=True)
    if with_seg:
        os.makedirs(osp.join(out, 'seg', 'img_dir', split), exist_ok=True)
        os.makedirs(osp.join(out, 'seg', 'ann_dir', split), exist_ok=True)
    records = []
    for i in range(num):
        image, label, concept_ids, captions = make_sample(rng, size)
        name = f'{split}_{i:05d}.png'
        Image.fromarray(image).save(osp.join(img_dir, name))
        if with_seg:
            Image.fromarray(image).save(osp.join(out, 'seg', 'img_dir', split, name))
            Image.fromarray(label).save(osp.join(out, 'seg', 'ann_dir', split, name))
        record = dict(
            image=f'images/{split}/{name}',
            caption=captions[0],
            extra_captions=captions[1:],
            labels=concept_ids)
        # Every second image carries region boxes, so that the demo trains both kinds of
        # samples (with boxes: caption + LocCa box tasks; without: captions only).
        boxes = demo_boxes(label, concept_ids) if i % 2 == 0 else []
        if boxes:
            record['boxes'] = boxes
        records.append(record)
    os.makedirs(osp.join(out, 'annotations'), exist_ok=True)
    with open(osp.join(out, 'annotations', f'pretrain_{split}.jsonl'), 'w') as f:
        for record in records:
            f.write(json.dumps(record) + '\n')


def make_demo_data(out: str,
                   num_train: int = 3000,
                   num_val: int = 200,
                   image_size: int = 96,
                   seed: int = 0,
                   force: bool = False,
                   num_seg_train: int = 200) -> bool:
    """Write the demo data set under ``out`` (see the module docstring).

    Args:
        out (str): Output directory.
        num_train (int): Training image-text pairs. Defaults to 3000.
        num_val (int): Held-out pairs; they also form the segmentation val set.
            Defaults to 200.
        image_size (int): Side of the square images. Defaults to 96.
        seed (int): Seed of the generator. Defaults to 0.
        force (bool): Rewrite even when ``out/meta.json`` says the same data is there.
        num_seg_train (int): Labelled images of the segmentation train split (linear probe),
            drawn with their own seed, disjoint from both pair splits. Defaults to 200.

    Returns:
        bool: True if files were written, False if the existing data was up to date.
    """
    meta = dict(
        generator_version=GENERATOR_VERSION,
        num_train=num_train,
        num_val=num_val,
        image_size=image_size,
        seed=seed,
        num_seg_train=num_seg_train,
        class_names=list(CLASS_NAMES))
    meta_path = osp.join(out, 'meta.json')
    if not force and osp.exists(meta_path):
        with open(meta_path) as f:
            if json.load(f) == meta:
                return False
    os.makedirs(out, exist_ok=True)
    # Different seeds per split keep the held-out images disjoint from the training ones.
    _write_split(out, 'train', num_train, image_size, seed * 2 + 1, with_seg=False)
    _write_split(out, 'val', num_val, image_size, seed * 2 + 2, with_seg=True)
    if num_seg_train:
        # A seed no pair split uses (those take 2 * seed + 1 and 2 * seed + 2).
        _write_seg_split(out, 'train', num_seg_train, image_size, 10_000 + seed)
    with open(osp.join(out, 'class_names.txt'), 'w') as f:
        f.write('\n'.join(CLASS_NAMES) + '\n')
    with open(meta_path, 'w') as f:
        json.dump(meta, f, indent=2)
    return True


def write_demo_shards(out: str, num_shards: int = 8, split: str = 'train') -> List[str]:
    """Pack the demo pairs of ``split`` into ``num_shards`` WebDataset tar shards.

    Pairs are dealt round-robin, so the shards differ in size by at most one pair. Each sample
    is ``<key>.png`` with ``<key>.json`` holding ``caption`` and ``extra_captions``, as
    :class:`~silc_seg.datasets.WebDatasetImageText` reads them.

    Args:
        out (str): The demo data directory (written by :func:`make_demo_data`).
        num_shards (int): Number of shards. Defaults to 8.
        split (str): ``'train'`` or ``'val'``. Defaults to ``'train'``.

    Returns:
        list[str]: The shard paths, ``out/shards/<split>-00000.tar`` and on.
    """
    if num_shards < 1:
        raise ValueError(f'num_shards must be >= 1, got {num_shards}')
    with open(osp.join(out, 'annotations', f'pretrain_{split}.jsonl')) as f:
        records = [json.loads(line) for line in f if line.strip()]
    os.makedirs(osp.join(out, 'shards'), exist_ok=True)
    paths = [osp.join(out, 'shards', f'{split}-{i:05d}.tar') for i in range(num_shards)]
    for shard, path in enumerate(paths):
        with tarfile.open(path, 'w') as tar:
            for record in records[shard::num_shards]:
                key = osp.splitext(osp.basename(record['image']))[0]
                caption = dict(
                    caption=record['caption'], extra_captions=record.get('extra_captions', []))
                if record.get('boxes'):
                    caption['boxes'] = record['boxes']
                with open(osp.join(out, record['image']), 'rb') as f:
                    members = [(f'{key}.png', f.read()),
                               (f'{key}.json', json.dumps(caption).encode())]
                for name, data in members:
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return paths
