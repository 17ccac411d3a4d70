"""Peak memory and time of one CAT-Seg head forward for a vocabulary size and class budget.

    python tools/analysis_tools/benchmark_catseg_head.py CONFIG --num-classes 847 \
        [--num-class-slots 256] [--device cpu]

Builds the config's ``decode_head`` (e.g. the ViT-B/16 head of ``catseg_b16_ade847.py``) and runs
it once, without gradients, on random inputs of the shapes the image tower gives for one
``image_size`` view (dense embeddings and the guidance maps) and ``--num-classes`` random text
embeddings. ``--num-class-slots 0`` disables the top-k class reduction. Run one setting per
process: on CPU the peak is the process's maximum resident set size, measured as its increase over
the forward.
"""
import argparse
import resource

import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

import silc_seg  # noqa: F401  (registers every module into mmseg's registries)
from silc_seg.registry import MODELS
from silc_seg.utils.log_utils import quiet_library_warnings
from silc_seg.utils.timing import Stopwatch


def main():
    quiet_library_warnings()
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--num-classes', type=int, required=True)
    parser.add_argument(
        '--num-class-slots',
        type=int,
        default=None,
        help="override the config's aggregator.num_class_slots")
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()

    init_default_scope('mmseg')
    torch.manual_seed(0)
    model_cfg = Config.fromfile(args.config).model
    head_cfg = model_cfg.decode_head
    if args.num_class_slots is not None:
        head_cfg.aggregator.num_class_slots = args.num_class_slots
    # the sizes CATSeg takes from the towers and templates
    tower = MODELS.build(model_cfg.image_encoder)
    head_cfg.vision_width = tower.width
    head_cfg.aggregator.text_dims = tower.output_dim
    head_cfg.aggregator.num_templates = len(model_cfg.templates)
    head = MODELS.build(head_cfg).to(args.device).eval()
    grid = [side // tower.patch_size for side in (model_cfg.image_size or tower.img_size)]
    dense = torch.randn(1, head_cfg.aggregator.text_dims, *grid, device=args.device)
    guidance = [
        torch.randn(1, head_cfg.vision_width, *grid, device=args.device)
        for _ in head.guidance_upsamplers
    ]
    text = F.normalize(
        torch.randn(
            args.num_classes,
            head_cfg.aggregator.num_templates,
            head_cfg.aggregator.text_dims,
            device=args.device),
        dim=-1)

    on_cuda = args.device.startswith('cuda')
    if on_cuda:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    watch = Stopwatch(args.device)
    with torch.no_grad():
        logits = watch.wrap(head)(dense, guidance, text)
    elapsed = watch.take()
    peak = (
        torch.cuda.max_memory_allocated()
        if on_cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    print(f'classes={args.num_classes} num_class_slots={head.aggregator.num_class_slots} '
          f'logits={tuple(logits.shape)} peak_memory_increase={(peak - base) / 2**20:.0f} MiB '
          f'time={elapsed:.2f} s')


if __name__ == '__main__':
    main()
