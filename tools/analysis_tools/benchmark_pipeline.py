"""Images/s of one dataloader worker: our SILC multi-crop pipeline vs DINO's torchvision recipe.

    python tools/analysis_tools/benchmark_pipeline.py \\
        [--config configs/_base_/datasets/wds_pretrain_224.py] [--num-images 300] [--rounds 5]
        [--data-dir DIR] [--profile]

Both sides read the same generated JPEG files (photo-like: smooth colour fields, edges, texture
and sensor noise, about 500 x 375, quality 90) in one process with one thread each (torch, OpenCV),
which is what one dataloader worker gets. Each round goes through the files in chunks of
``--chunk`` images, and every side processes each chunk in turn (rotating which goes first), so
that load changes on a shared machine hit all sides alike; images/s of a side is its total over a
round, and the ratios are medians over the rounds.

- ``ours``: :class:`ImageTextManifestDataset` with the config's ``cpu_train_pipeline`` (its
  ``train_pipeline`` if it has none): read and decode the file, 2 global + ``num_local_crops``
  local crops with the DINO photometric augmentations, caption tokenisation and packing into
  ``uint8`` tensors. Normalisation happens later, batched on the device, in
  ``SILCDataPreprocessor``.
- ``ours-crop`` (configs with ``cpu_train_pipeline`` and ``device_augments``): the config's
  ``train_pipeline``, i.e. the worker's part when the photometric augmentation runs on the device
  (decode, crop, tokenise, pack). The script also times what the main process then adds: the
  data preprocessor with ``batch_augments=device_augments`` on collated batches of
  ``--batch-size`` samples (``training=True``) minus the same without augmentation
  (``training=False``: layout and normalisation only), on ``--device`` with the main process's
  threads (``--main-threads``), interleaved with the same normalisation-only call.
  ``--main-only`` times that alone, on synthetic uint8 crops of the config's sizes (no JPEG
  is decoded: what the GPU kit runs, where OpenCV is not installed).
- ``dino``: ``DataAugmentationDINO`` of facebookresearch/dino ``main_dino.py`` (main branch;
  ``GaussianBlur`` and ``Solarization`` from its ``utils.py``), written out below from its
  description with torchvision: PIL decode (``ImageFolder``'s loader),
  ``RandomResizedCrop`` (bicubic), flip, ``ColorJitter(0.4, 0.4, 0.2, 0.1)`` with p=0.8,
  grayscale with p=0.2, PIL Gaussian blur (radius U(0.1, 2); p=1 / 0.1 / 0.5 for global 1 /
  global 2 / locals), solarization p=0.2 on global 2, ``ToTensor`` + ``Normalize`` per crop.
  The local crop count is ours (SILC: 6; DINO's default is 8) so both make the same crops, and
  when the config packs separate image-text views (``num_contrastive_crops``, e.g. 2 in
  ``wds_pretrain_224.py``) this side makes them too (plain bicubic ``RandomResizedCrop`` at the
  global size and scale, as the config's ``contrastive_view``).
- ``dino-uint8``: the same recipe ending in ``PILToTensor`` (no float conversion or
  normalisation), i.e. the work our pipeline does per worker.
"""
import argparse
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope
from PIL import Image, ImageFilter, ImageOps

import silc_seg  # noqa: F401  (registers the transforms and datasets)
from silc_seg.registry import DATASETS
from silc_seg.utils import get_config_path
from silc_seg.utils.log_utils import quiet_library_warnings
from silc_seg.utils.timing import time_call

DEFAULT_CONFIG = 'configs/_base_/datasets/wds_pretrain_224.py'
SIZES = ((500, 375), (375, 500), (500, 333), (480, 360), (500, 400), (333, 500))


def parse_args():
    parser = argparse.ArgumentParser(description='Data pipeline images/s, ours vs DINO')
    parser.add_argument(
        '--config',
        default=DEFAULT_CONFIG,
        help='config with train_pipeline, num_local_crops and crop settings')
    parser.add_argument('--num-images', type=int, default=300)
    parser.add_argument('--rounds', type=int, default=5, help='timed passes over the files')
    parser.add_argument('--chunk', type=int, default=10, help='images per turn of a side')
    parser.add_argument('--data-dir', help='where to write the JPEGs (default: a temp dir)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--profile',
        action='store_true',
        help='print the top functions of one cProfile pass of ours')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=32,
        help='samples per batch of the main-process augmentation timing')
    parser.add_argument(
        '--device', default='cpu', help='where the main process augments (cpu, cuda)')
    parser.add_argument(
        '--main-only',
        action='store_true',
        help='only the main-process augmentation, on synthetic uint8 crops (no decoding)')
    parser.add_argument(
        '--main-threads',
        type=int,
        default=1,
        help='torch threads of the main process for its timing')
    return parser.parse_args()


def photo_like(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """An RGB ``uint8`` image with the statistics that matter for JPEG and resampling cost:
    smooth low-frequency colour, a few hard-edged shapes, mid-frequency texture, noise."""
    base = rng.uniform(0, 255, (4, 5, 3)).astype(np.float32)
    img = np.asarray(
        Image.fromarray(base.astype(np.uint8)).resize((width, height), Image.BICUBIC),
        dtype=np.float32)
    yy, xx = np.mgrid[0:height, 0:width]
    for _ in range(rng.integers(3, 7)):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        radius = rng.uniform(20, min(width, height) / 2)
        mask = (xx - cx)**2 + (yy - cy)**2 < radius**2
        img[mask] = 0.5 * img[mask] + 0.5 * rng.uniform(0, 255, 3)
    freq = rng.uniform(0.05, 0.3)
    img += 20 * np.sin(freq * xx + rng.uniform(0, 6))[..., None] * np.cos(freq * 0.7 * yy)[...,
                                                                                           None]
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_jpegs(data_dir: Path, num_images: int, seed: int) -> Path:
    """Write ``num_images`` JPEGs and a JSONL manifest; return the manifest path."""
    rng = np.random.default_rng(seed)
    data_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(num_images):
        width, height = SIZES[i % len(SIZES)]
        name = f'{i:05d}.jpg'
        Image.fromarray(photo_like(rng, width, height)).save(data_dir / name, quality=90)
        lines.append(
            json.dumps(
                dict(
                    image=name,
                    caption=f'a photo of object number {i} '
                    'on a table next to a window')))
    manifest = data_dir / 'manifest.jsonl'
    manifest.write_text('\n'.join(lines) + '\n')
    return manifest


class DinoBlur:
    """PIL Gaussian blur with probability ``p`` and radius ~ U(0.1, 2) (DINO's utils)."""

    def __init__(self, p: float):
        self.p = p

    def __call__(self, img):
        if random.random() >= self.p:
            return img
        return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))


class DinoSolarize:
    """PIL solarization (threshold 128) with probability ``p``."""

    def __init__(self, p: float):
        self.p = p

    def __call__(self, img):
        return ImageOps.solarize(img) if random.random() < self.p else img


class DinoRecipe:
    """DINO's multi-crop augmentation, written out with torchvision (see the module doc)."""

    def __init__(self,
                 global_size,
                 local_size,
                 global_scale,
                 local_scale,
                 num_local,
                 num_contrastive=0,
                 normalize=True):
        from torchvision import transforms as T
        bicubic = T.InterpolationMode.BICUBIC
        jitter = T.Compose([
            T.RandomHorizontalFlip(p=0.5),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
        ])
        to_tensor = T.Compose(
            [T.ToTensor(), T.Normalize((0.485, 0.456, 0.406),
                                       (0.229, 0.224, 0.225))]) if normalize else T.PILToTensor()
        self.global_1 = T.Compose([
            T.RandomResizedCrop(global_size, scale=global_scale, interpolation=bicubic), jitter,
            DinoBlur(1.0), to_tensor
        ])
        self.global_2 = T.Compose([
            T.RandomResizedCrop(global_size, scale=global_scale, interpolation=bicubic), jitter,
            DinoBlur(0.1),
            DinoSolarize(0.2), to_tensor
        ])
        self.local = T.Compose([
            T.RandomResizedCrop(local_size, scale=local_scale, interpolation=bicubic), jitter,
            DinoBlur(0.5), to_tensor
        ])
        # SILC's image-text views (PackSILCInputs' contrastive_crops): a plain resized crop at
        # the global size, no colour change; not part of DINO, added so both sides make the
        # same crops when the config has them.
        self.contrastive = T.Compose([
            T.RandomResizedCrop(global_size, scale=global_scale, interpolation=bicubic), to_tensor
        ])
        self.num_local = num_local
        self.num_contrastive = num_contrastive

    def __call__(self, img):
        return [self.global_1(img), self.global_2(img)] + [
            self.local(img) for _ in range(self.num_local)
        ] + [self.contrastive(img) for _ in range(self.num_contrastive)]


def dino_sample(recipe, path):
    """ImageFolder's default loader (PIL, RGB) + the recipe."""
    with open(path, 'rb') as f:
        img = Image.open(io.BytesIO(f.read())).convert('RGB')
    return recipe(img)


def time_pass(fetch, num):
    return num / time_call(lambda: [fetch(i) for i in range(num)])


def interleaved_round(sides, num, chunk, first):
    """Images/s of every side over ``num`` images, the sides taking turns chunk by chunk."""
    names = list(sides)
    elapsed = dict.fromkeys(names, 0.0)
    for turn, begin in enumerate(range(0, num, chunk)):
        shift = (first + turn) % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed[name] += time_call(
                lambda: [sides[name](i) for i in range(begin, min(begin + chunk, num))])
    return {name: num / elapsed[name] for name in names}


def synthetic_batch(cfg, batch_size, seed=0):
    """A collated batch as the crop-only pipeline packs it (uint8 crops of the config's sizes,
    random tokens), for ``--main-only``: no JPEG is decoded."""
    generator = torch.Generator().manual_seed(seed)

    def crops(num, size):
        return [
            torch.randint(
                0, 256, (batch_size, 3, size, size), generator=generator, dtype=torch.uint8)
            for _ in range(num)
        ]

    inputs = dict(
        global_crops=crops(cfg.get('num_global_crops', 2), cfg.global_crop_size),
        local_crops=crops(cfg.num_local_crops, cfg.local_crop_size),
        text=torch.randint(1, 1000, (batch_size, 77), generator=generator))
    if cfg.get('num_contrastive_crops', 0):
        inputs['contrastive_crops'] = crops(cfg.num_contrastive_crops, cfg.global_crop_size)
    return dict(inputs=inputs, data_samples=None)


def main_process_cost(cfg, batch, args, worker_rate=None):
    """Seconds per image the main process adds when it augments on ``args.device``: the data
    preprocessor with ``device_augments`` minus the same without (layout + normalisation),
    on a collated batch of the crop-only pipeline, the two calls alternating."""
    from silc_seg.models.data_preprocessors import SILCDataPreprocessor
    threads = torch.get_num_threads()
    torch.set_num_threads(args.main_threads)
    preprocessor = SILCDataPreprocessor(batch_augments=cfg.device_augments).to(args.device)
    timings = {True: [], False: []}
    for repeat in range(2 + 2 * args.rounds):
        for training in (True, False) if repeat % 2 else (False, True):
            seconds = time_call(lambda: preprocessor(batch, training=training), args.device)
            if repeat >= 2:  # the first two are warm-up
                timings[training].append(seconds)
    with_aug, without = (
        statistics.median(timings[key]) / args.batch_size for key in (True, False))
    print(f'main process on {args.device} ({args.main_threads} thread(s)), batches of '
          f'{args.batch_size}: augmentation {(with_aug - without) * 1e3:.2f} ms per image '
          f'(preprocessor with it {with_aug * 1e3:.2f} ms, without {without * 1e3:.2f} ms)' +
          (f'; a crop-only worker takes {1e3 / worker_rate:.2f} ms per image'
           if worker_rate else ''))
    torch.set_num_threads(threads)


def main():
    args = parse_args()
    quiet_library_warnings()
    torch.set_num_threads(1)  # what a dataloader worker gets
    try:
        import cv2
        cv2.setNumThreads(0)  # MMEngine's default env_cfg (opencv_num_threads=0)
    except ImportError:
        pass
    cfg = Config.fromfile(
        args.config if os.path.isfile(args.config) else get_config_path(args.config))
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if args.main_only:
        if 'device_augments' not in cfg:
            raise SystemExit(f'{args.config} has no device_augments: nothing to time')
        main_process_cost(cfg, synthetic_batch(cfg, args.batch_size, args.seed), args)
        return
    tmp = None
    if args.data_dir:
        data_dir = Path(args.data_dir)
    else:
        tmp = tempfile.TemporaryDirectory()
        data_dir = Path(tmp.name)
    manifest = data_dir / 'manifest.jsonl'
    if not manifest.exists() or len(manifest.read_text().splitlines()) != args.num_images:
        make_jpegs(data_dir, args.num_images, args.seed)
    paths = [data_dir / json.loads(line)['image'] for line in manifest.read_text().splitlines()]
    mean_kb = np.mean([os.path.getsize(p) for p in paths]) / 1024

    def build_dataset(pipeline):
        return DATASETS.build(
            dict(
                type='ImageTextManifestDataset',
                data_root=str(data_dir),
                ann_file='manifest.jsonl',
                pipeline=pipeline))

    device_split = 'cpu_train_pipeline' in cfg and 'device_augments' in cfg
    dataset = build_dataset(cfg.cpu_train_pipeline if device_split else cfg.train_pipeline)
    geometry = dict(
        global_size=cfg.global_crop_size,
        local_size=cfg.local_crop_size,
        global_scale=tuple(cfg.global_crop_scale),
        local_scale=tuple(cfg.local_crop_scale),
        num_local=cfg.num_local_crops,
        num_contrastive=cfg.get('num_contrastive_crops', 0))
    sides = {
        'ours': dataset.__getitem__,
        'dino': lambda i, r=DinoRecipe(**geometry): dino_sample(r, paths[i]),
        'dino-uint8':
        lambda i, r=DinoRecipe(**geometry, normalize=False): dino_sample(r, paths[i]),
    }
    if device_split:
        sides['ours-crop'] = build_dataset(cfg.train_pipeline).__getitem__
    # Same crops on both sides.
    ours = sides['ours'](0)['inputs']
    dino = sides['dino'](0)
    ours_shapes = [
        tuple(v.shape)
        for v in [*ours['global_crops'], *ours['local_crops'], *ours.get('contrastive_crops', [])]
    ]
    assert ours_shapes == [tuple(v.shape) for v in dino], (ours_shapes, dino)

    np.random.seed(args.seed)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    for fetch in sides.values():  # warm-up
        time_pass(fetch, min(20, args.num_images))
    rates = {name: [] for name in sides}
    for round_index in range(args.rounds):
        for name, rate in interleaved_round(sides, args.num_images, args.chunk,
                                            round_index).items():
            rates[name].append(rate)

    print(f'config: {args.config}  images: {args.num_images} JPEGs, mean {mean_kb:.0f} KiB  '
          f'crops: 2x{cfg.global_crop_size} + {cfg.num_local_crops}x{cfg.local_crop_size}'
          f' + {geometry["num_contrastive"]}x{cfg.global_crop_size} contrastive  '
          f'threads: torch {torch.get_num_threads()}  '
          f'rounds: {args.rounds} (chunks of {args.chunk})')
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, values in rates.items():
        print(f'{name:>10}: {medians[name]:6.1f} images/s per worker  '
              f'(rounds: {", ".join(f"{v:.1f}" for v in values)})')
    pairs = [('ours', 'dino'), ('ours', 'dino-uint8')]
    if device_split:
        pairs += [('ours-crop', 'dino'), ('ours-crop', 'dino-uint8'), ('ours-crop', 'ours')]
    for side, peer in pairs:
        ratios = [a / b for a, b in zip(rates[side], rates[peer])]
        print(f'{side} / {peer}: {statistics.median(ratios):.2f}x '
              f'(median of per-round ratios; rounds {min(ratios):.2f} to {max(ratios):.2f})')
    if device_split:
        batch = default_collate(
            [sides['ours-crop'](i % args.num_images) for i in range(args.batch_size)])
        main_process_cost(cfg, batch, args, statistics.median(rates['ours-crop']))

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        time_pass(sides['ours'], args.num_images)
        profiler.disable()
        pstats.Stats(profiler).sort_stats('tottime').print_stats(25)
    if tmp is not None:
        tmp.cleanup()


if __name__ == '__main__':
    main()
