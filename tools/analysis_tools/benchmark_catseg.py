"""CAT-Seg training iteration time / peak memory and test-time images/s, on random weights.

    python tools/analysis_tools/benchmark_catseg.py [CONFIG] [--device cuda] [--dtype fp32]
        [--batch-size 4] [--iters 20] [--warmup 5] [--test-images 10] [--out result.json]

Training: one iteration of the config's model (default ``configs/silc/catseg_b16_coco-stuff171
.py``: ViT-B/16 towers at 384 px, 171 COCO-Stuff training classes), i.e. forward, loss,
backward, gradient clipping and the AdamW step of the config's ``optim_wrapper`` (tower
multipliers included), on a batch of random ``crop_size`` images and random labels. CAT-Seg's
reference trains in fp32 (detectron2's ``SOLVER.AMP`` is off in its configs); ``--dtype bf16``
runs the forward under bf16 autocast instead. Peak memory: ``torch.cuda.max_memory_allocated``
over the timed iterations (on CPU: the process's maximum resident set size).

Test: ``predict`` of the config's ``test_cfg`` (CAT-Seg: the image resized to 640 x 640, four
384 windows and a global view) on ADE-150-sized images (``--test-size``, default 512 x 683, the
ADE20K validation median) with the 150 ADE class names; the text embeddings are built before the
timing, as the evaluation caches them. Weights are random: the speed does not depend on them.

Prints one JSON line (and writes it to ``--out``); ``--device cpu`` with
``configs/silc/catseg_tiny_coco-stuff171.py`` checks the script in seconds.
"""
import argparse
import json
import resource
import statistics
from contextlib import nullcontext
from pathlib import Path

import torch
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

import silc_seg  # noqa: F401  (registers the modules)
from silc_seg.registry import MODELS
from silc_seg.utils.log_utils import quiet_library_warnings
from silc_seg.utils.timing import Stopwatch, time_call

DEFAULT_CONFIG = 'configs/silc/catseg_b16_coco-stuff171.py'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--dtype',
        choices=('fp32', 'bf16'),
        default='fp32',
        help='fp32 (CAT-Seg) or bf16 autocast of the forward')
    parser.add_argument('--batch-size', type=int, default=4, help='CAT-Seg: 4 per iteration')
    parser.add_argument('--iters', type=int, default=20, help='timed training iterations')
    parser.add_argument('--warmup', type=int, default=5, help='untimed training iterations')
    parser.add_argument('--test-images', type=int, default=10, help='timed test images')
    parser.add_argument(
        '--test-size',
        type=int,
        nargs=2,
        default=(512, 683),
        metavar=('H', 'W'),
        help='test image size before the test protocol')
    parser.add_argument('--out', help='also write the JSON result to this file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def peak_memory_mib(device: str) -> float:
    if device.startswith('cuda'):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def random_batch(model, batch_size: int, crop_size, num_classes: int, device: str):
    from mmseg.structures import SegDataSample
    images = torch.randn(batch_size, 3, *crop_size, device=device)
    samples = []
    for _ in range(batch_size):
        labels = torch.randint(0, num_classes, (1, *crop_size), device=device)
        labels[:, :8] = 255  # a band of ignored pixels, as the padded crops of real data have
        samples.append(
            SegDataSample(
                gt_sem_seg=PixelData(data=labels),
                metainfo=dict(img_shape=crop_size, ori_shape=crop_size)))
    return images, samples


def benchmark_training(model, optim_wrapper, args) -> dict:
    crop_size = tuple(model.image_size)
    num_classes = len(model.train_vocabulary)
    images, samples = random_batch(model, args.batch_size, crop_size, num_classes, args.device)
    autocast = (
        torch.autocast(device_type=args.device.split(':')[0], dtype=torch.bfloat16)
        if args.dtype == 'bf16' else nullcontext())
    model.train()

    def train_step():
        with autocast:
            losses = model.loss(images, samples)
        optim_wrapper.update_params(sum(v for k, v in losses.items() if k.startswith('loss')))
        return losses

    times, watch = [], Stopwatch(args.device)
    for step in range(args.warmup + args.iters):
        if step == args.warmup and args.device.startswith('cuda'):
            torch.cuda.reset_peak_memory_stats()
        losses = watch.wrap(train_step)()
        seconds = watch.take()
        if step >= args.warmup:
            times.append(seconds)
    return dict(
        train_batch=args.batch_size,
        train_crop=list(crop_size),
        train_classes=num_classes,
        train_iter_s_median=statistics.median(times),
        train_iter_s_min=min(times),
        train_peak_mib=round(peak_memory_mib(args.device)),
        final_loss=float(losses['loss_ce'].detach()))


def benchmark_test(model, args) -> dict:
    from mmseg.datasets import ADE20KDataset
    from mmseg.structures import SegDataSample
    model.eval()
    model.set_vocabulary(list(ADE20KDataset.METAINFO['classes']))
    height, width = args.test_size
    image = torch.randn(1, 3, height, width, device=args.device)
    meta = dict(img_shape=(height, width), ori_shape=(height, width))
    autocast = (
        torch.autocast(device_type=args.device.split(':')[0], dtype=torch.bfloat16)
        if args.dtype == 'bf16' else nullcontext())
    with torch.no_grad(), autocast:
        model.test_text_features()  # built once before the evaluation loop, then cached
        model.predict(image, [SegDataSample(metainfo=meta)])  # warm-up
        if args.device.startswith('cuda'):
            torch.cuda.reset_peak_memory_stats()
        elapsed = time_call(
            lambda: [
                model.predict(image, [SegDataSample(metainfo=meta)])
                for _ in range(args.test_images)
            ], args.device)
    return dict(
        test_size=[height, width],
        test_classes=150,
        test_mode=model.test_cfg['mode'],
        test_images_per_s=args.test_images / elapsed,
        test_peak_mib=round(peak_memory_mib(args.device)))


def main(argv=None) -> dict:
    args = parse_args(argv)
    quiet_library_warnings()
    init_default_scope('mmseg')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(args.device)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    result = dict(
        config=args.config,
        device=args.device,
        dtype=args.dtype,
        gpu=torch.cuda.get_device_name() if args.device.startswith('cuda') else None,
        torch=torch.__version__,
        dense_variant=model.dense_variant)
    result.update(benchmark_training(model, optim_wrapper, args))
    result.update(benchmark_test(model, args))
    line = json.dumps(result)
    print(line)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(line + '\n')
    return result


if __name__ == '__main__':
    main()
