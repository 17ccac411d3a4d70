"""Throughput of zero-shot segmentation: this implementation vs a straightforward SCLIP-style loop.

    python tools/analysis_tools/benchmark_zeroshot.py CONFIG [--checkpoint CKPT]
        [--num-images 4] [--image-size 336 448] [--repeats 2] [--device cpu]
        [--cfg-options model.image_encoder.depth=... ...]

Both paths use the same model, vocabulary (the config dataset's classes) and synthetic images,
in one process:

- ``ours``: :meth:`ZeroShotSegmentor.predict`: text classifier computed once and cached, all
  sliding windows of an image batched through the image tower (``window_batch_size``);
- ``loop``: what SCLIP's reference code does per image: text embeddings recomputed for every
  image, then one window at a time through the image tower.

The two must predict the same labels (checked); the script prints images/s of each and the ratio.
Without ``--checkpoint`` the towers keep their random initialization (speed does not depend on
the weights).
"""
import argparse
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import load_checkpoint
from mmseg.structures import SegDataSample

import silc_seg  # noqa: F401  (registers every module into mmseg's registries)
from silc_seg.models.segmentors.zero_shot_segmentor import sliding_windows
from silc_seg.registry import DATASETS, MODELS
from silc_seg.utils import ConfigOverrideError, merge_cfg_options


def parse_args():
    parser = argparse.ArgumentParser(description='Benchmark zero-shot segmentation')
    parser.add_argument('config', help='zero-shot config file')
    parser.add_argument('--checkpoint', help='optional checkpoint')
    parser.add_argument('--num-images', type=int, default=4)
    parser.add_argument('--image-size', type=int, nargs=2, default=(336, 448),
                        metavar=('H', 'W'), help='preprocessed image size')
    parser.add_argument('--repeats', type=int, default=3, help='timed passes (best is kept)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, in xxx=yyy format (keys are '
                        'checked against the config; +xxx=yyy adds a key it does not have)')
    return parser.parse_args()


def dataset_classes(config):
    dataset = config.test_dataloader.dataset
    metainfo = dataset.get('metainfo') or {}
    if 'classes' in metainfo:
        return list(metainfo['classes'])
    return list(DATASETS.get(dataset.type).METAINFO['classes'])


@torch.no_grad()
def loop_predict(model, images):
    """SCLIP-style reference: per image, recompute the text classifier, then run every sliding
    window alone through the image tower and average the overlapping window logits."""
    labels = []
    crop_size, stride = model.test_cfg['crop_size'], model.test_cfg['stride']
    queries = [synonyms for synonyms in model.vocabulary]
    flat_queries = [name for synonyms in queries for name in synonyms]
    query_to_class = [index for index, synonyms in enumerate(queries) for _ in synonyms]
    for image in images:
        text_embeddings = model.encode_queries(flat_queries)
        height, width = image.shape[-2:]
        total = image.new_zeros((len(flat_queries), height, width))
        count = image.new_zeros((1, height, width))
        for y1, y2, x1, x2 in sliding_windows(height, width, crop_size, stride):
            total[:, y1:y2, x1:x2] += model._window_logits(image[None, :, y1:y2, x1:x2],
                                                           text_embeddings)[0]
            count[:, y1:y2, x1:x2] += 1
        probabilities = model.decode_head.class_probabilities(total / count, query_to_class,
                                                              len(queries))
        labels.append(model.decode_head.predict_labels(probabilities))
    return labels


@torch.no_grad()
def ours_predict(model, images):
    model._text_cache = None  # the first image pays for the text classifier, as in a test run
    labels = []
    for image in images:
        sample = SegDataSample(metainfo=dict(img_shape=image.shape[-2:],
                                             ori_shape=image.shape[-2:]))
        labels.append(model.predict(image[None], [sample])[0].pred_sem_seg.data)
    return labels


def best_times(functions, repeats):
    """Best wall time of each function over ``repeats`` passes, the functions interleaved so
    that a load change on a shared machine hits both alike."""
    timings = [[] for _ in functions]
    results = [None] * len(functions)
    for _ in range(repeats):
        for index, function in enumerate(functions):
            start = time.perf_counter()
            results[index] = function()
            timings[index].append(time.perf_counter() - start)
    return [min(t) for t in timings], results


def main():
    args = parse_args()
    config = Config.fromfile(args.config)
    try:
        merge_cfg_options(config, args.cfg_options)
    except ConfigOverrideError as err:
        raise SystemExit(f'--cfg-options {err}')
    init_default_scope(config.get('default_scope', 'mmseg'))
    if config.model.test_cfg.get('mode') != 'slide':
        raise ValueError('the benchmark compares sliding-window inference; use a slide config')
    model = MODELS.build(config.model).to(args.device).eval()
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    classes = dataset_classes(config)
    model.set_vocabulary(classes)
    torch.manual_seed(0)
    images = [torch.randn(3, *args.image_size, device=args.device)
              for _ in range(args.num_images)]

    (ours_time, loop_time), (ours_labels, loop_labels) = best_times(
        [lambda: ours_predict(model, images), lambda: loop_predict(model, images)],
        args.repeats)
    agreement = torch.stack([(a == b).float().mean()
                             for a, b in zip(ours_labels, loop_labels)]).mean().item()
    windows = len(sliding_windows(*args.image_size, model.test_cfg['crop_size'],
                                  model.test_cfg['stride']))
    print(f'config: {args.config}; {len(classes)} classes x {len(model.templates)} templates; '
          f'{args.num_images} images {args.image_size[0]}x{args.image_size[1]}, {windows} '
          f'windows each; device {args.device}, {torch.get_num_threads()} threads')
    print(f'ours: {args.num_images / ours_time:.3f} images/s ({ours_time:.2f} s)')
    print(f'loop: {args.num_images / loop_time:.3f} images/s ({loop_time:.2f} s)')
    print(f'speed-up: {loop_time / ours_time:.2f}x; identical labels: {agreement:.2%}')
    if agreement < 0.999:
        raise RuntimeError('the two paths disagree: the benchmark compares different things')


if __name__ == '__main__':
    main()
