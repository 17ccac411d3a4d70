"""Native-aspect zero-shot inference (test_cfg.mode='native') against sliding square windows
on the same towers: per-pixel label agreement and images/s, measured side by side.

    python tools/analysis_tools/benchmark_native_aspect.py \\
        configs/silc/zs_siglip2_vit-b-16-naflex_ade150.py \\
        configs/silc/zs_siglip2_vit-b-16-naflex_slide_ade150.py [--checkpoint CKPT] \\
        [--images 8] [--num-classes 150]

Images: random ones in the sizes of the benchmark layouts after the zero-shot pipeline (short
side 336; landscape, portrait and wide). Without ``--checkpoint`` the towers keep their random
initialization (seeded). The text embeddings are random unit vectors, one per class, in any
case: the figures measure how much the two inference modes differ on one image tower, not
accuracy.
"""
import argparse
import time

import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

from silc_seg.registry import MODELS
from silc_seg.utils import load_model_checkpoint

SIZES = [(336, 448), (448, 336), (336, 504), (336, 597), (336, 336), (336, 420)]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('native', help='config with test_cfg.mode=native')
    parser.add_argument('slide', help='config with test_cfg.mode=slide (same towers)')
    parser.add_argument('--checkpoint', help='converted SigLIP 2 weights')
    parser.add_argument('--images', type=int, default=6)
    parser.add_argument(
        '--num-classes', type=int, default=150, help='number of random class embeddings')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def build(config, checkpoint):
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model).eval()
    if checkpoint:
        load_model_checkpoint(model, checkpoint)
    return model


@torch.no_grad()
def measure(model, images):
    labels, start = [], time.perf_counter()
    for image in images:
        logits = model.inference(image[None], [dict(img_shape=image.shape[-2:])])[0]
        labels.append(logits.argmax(0))
    return labels, len(images) / (time.perf_counter() - start)


def main(argv=None):
    args = parse_args(argv)
    native, slide = build(args.native, args.checkpoint), build(args.slide, args.checkpoint)
    torch.manual_seed(args.seed)
    # Random class embeddings stand in for the text tower (no vocabulary or tokenizer file).
    text = F.normalize(torch.randn(args.num_classes, native.image_encoder.output_dim), dim=-1)
    for model in (native, slide):
        model.text_embeddings = lambda: (text, list(range(len(text))))
    images = [torch.randn(3, *SIZES[i % len(SIZES)]) for i in range(args.images)]
    measure(native, images[:1])  # warm-up
    native_labels, native_speed = measure(native, images)
    slide_labels, slide_speed = measure(slide, images)
    agreement = sum(
        (a == b).sum().item()
        for a, b in zip(native_labels, slide_labels)) / sum(a.numel() for a in native_labels)
    print(f'images: {args.images} ({", ".join(f"{h}x{w}" for h, w in SIZES[:args.images])})')
    print(f'native ({native.test_cfg}): {native_speed:.2f} images/s')
    print(f'slide ({slide.test_cfg}): {slide_speed:.2f} images/s')
    print(f'native / slide speed: {native_speed / slide_speed:.2f}x; '
          f'per-pixel label agreement: {100 * agreement:.1f} %')


if __name__ == '__main__':
    main()
