"""One CLIP training step of our contrastive-only model vs OpenCLIP's, side by side.

    python tools/analysis_tools/benchmark_openclip_step.py [CONFIG] [--batch-size 8] [--iters 5]
        [--amp] [--fused] [--compile] [--with-cp] [--memory] [--device cpu|cuda]

``ours``: the config's model with ``distill_head=None`` (default config
``configs/silc/pretrain_clip_b16.py``: ViT-B/16 image tower, CLIP-B text tower), one global view
per pair, :meth:`SILC.train_step` (data preprocessing of the ``uint8`` images, forward, CLIP loss,
backward, optimizer step, zero grad). ``open_clip``: ``open_clip.create_model('ViT-B-16')`` (random
weights) and ``open_clip.loss.ClipLoss``, fed the batch already normalised (as OpenCLIP's
dataloader delivers it), forward, loss, backward, step, zero grad. Both use ``torch.optim.AdamW``
with the config's settings (lr, betas, eps, weight decay; one parameter group, no gradient
clipping), the same batch, the same dtype (fp32, or bf16 autocast with ``--amp``); their steps
alternate in one process and medians are reported.

``--memory``: peak memory of each side's step. On CUDA: ``torch.cuda.max_memory_allocated`` in
this process. On CPU the process-wide peak resident set size cannot be split between two models
in one process, so each side runs alone in a child process (same settings, two steps) and reports
its peak RSS over the steps minus its RSS before the first step (weights and inputs excluded;
gradients, optimizer state and activations included).
"""
import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
from contextlib import nullcontext

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

import silc_seg  # noqa: F401
from silc_seg.models.data_preprocessors.silc_data_preprocessor import CLIP_MEAN, CLIP_STD
from silc_seg.models.utils.compile import compile_transformer_blocks
from silc_seg.registry import MODELS
from silc_seg.utils import (add_cfg_options_argument, get_config_path, load_config,
                            mmengine_log_level, synchronize, time_call)
from silc_seg.utils.log_utils import quiet_library_warnings

DEFAULT_CONFIG = 'configs/silc/pretrain_clip_b16.py'
SIDES = ('ours', 'open_clip')


def parse_args():
    parser = argparse.ArgumentParser(description='CLIP step: ours vs open_clip')
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--iters', type=int, default=5, help='timed steps of each')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps of each')
    parser.add_argument('--amp', action='store_true', help='bf16 autocast (both)')
    parser.add_argument('--fused', action='store_true', help='fused AdamW (both)')
    parser.add_argument(
        '--compile', action='store_true', help='torch.compile every transformer block (both)')
    parser.add_argument(
        '--with-cp', action='store_true', help='activation checkpointing of our towers\' blocks')
    parser.add_argument('--memory', action='store_true', help='also measure peak memory')
    parser.add_argument(
        '--memory-only', action='store_true', help='measure peak memory, skip the timing')
    parser.add_argument(
        '--profile',
        action='store_true',
        help='print the torch.profiler operator table of one step of each')
    parser.add_argument(
        '--no-optimizer-step',
        action='store_true',
        help='forward, loss and backward only, gradients dropped: isolates '
        'the activation memory from AdamW\'s state and temporaries')
    parser.add_argument('--only', choices=SIDES, help=argparse.SUPPRESS)  # memory child
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    add_cfg_options_argument(parser)
    return parser.parse_args()


def make_batch(batch_size, context_length, device, seed=0):
    """``uint8`` RGB images, the same images normalised, and token ids ending in CLIP's
    end-of-text id (the highest id, where both text towers pool)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(
        0, 256, (batch_size, 3, 224, 224), generator=generator, dtype=torch.uint8)
    text = torch.randint(1, 49406, (batch_size, context_length), generator=generator)
    lengths = torch.randint(5, context_length, (batch_size, ), generator=generator)
    positions = torch.arange(context_length)
    text[positions > lengths[:, None]] = 0
    text[torch.arange(batch_size), lengths] = 49407
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    normalised = ((images.float() - mean) / std).to(device)
    return images, normalised, text


def build_optimizer(params, cfg, fused):
    settings = {k: v for k, v in cfg.optim_wrapper.optimizer.items() if k != 'type'}
    if fused:
        settings['fused'] = True
    return torch.optim.AdamW(params, **settings)


def build_ours(cfg, args, device):
    model_cfg = cfg.model.copy()
    model_cfg.update(distill_head=None, distill_loss=None)
    if args.with_cp:
        model_cfg.image_encoder.with_cp = True
        model_cfg.text_encoder.with_cp = True
    model = MODELS.build(model_cfg)
    with mmengine_log_level(logging.WARNING):  # not one line per parameter
        model.init_weights()
    model.to(device).train()
    if args.compile:
        compile_transformer_blocks(model)
    return model, OptimWrapper(build_optimizer(model.parameters(), cfg, args.fused))


def build_open_clip(cfg, args, device):
    import open_clip
    model = open_clip.create_model('ViT-B-16').to(device).train()
    if args.compile:
        for block in model.visual.transformer.resblocks:
            block.compile()
        for block in model.transformer.resblocks:
            block.compile()
    return model, build_optimizer(model.parameters(), cfg, args.fused), open_clip.loss.ClipLoss()


def make_steps(cfg, args, device, sides):
    """``{side: step function}``; each builds its model with the same seed."""
    context_length = 77
    images, normalised, text = make_batch(args.batch_size, context_length, device)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if args.amp else \
        nullcontext
    steps, params = {}, {}
    if 'ours' in sides:
        torch.manual_seed(0)
        ours, ours_optim = build_ours(cfg, args, device)
        data = dict(inputs=dict(global_crops=[images], text=text), data_samples=None)

        def ours_step():
            if args.no_optimizer_step:
                with autocast():
                    inputs = ours.data_preprocessor(data, True)['inputs']
                    loss, _ = ours.parse_losses(ours.loss(inputs))
                loss.backward()
                ours.zero_grad(set_to_none=True)
                return
            with autocast():
                ours.train_step(data, ours_optim)

        steps['ours'] = ours_step
        params['ours'] = sum(p.numel() for p in ours.parameters())
    if 'open_clip' in sides:
        torch.manual_seed(0)
        peer, peer_optim, peer_loss = build_open_clip(cfg, args, device)
        peer_text = text.to(device)

        def peer_step():
            with autocast():
                image_features, text_features, logit_scale = peer(normalised, peer_text)[:3]
                loss = peer_loss(image_features, text_features, logit_scale)
            loss.backward()
            if not args.no_optimizer_step:
                peer_optim.step()
            peer_optim.zero_grad()

        steps['open_clip'] = peer_step
        params['open_clip'] = sum(p.numel() for p in peer.parameters())
    return steps, params


def rss_mib(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f'no {field} in /proc/self/status')


def memory_child(cfg, args, device):
    """Run one side alone; print its peak memory over two steps as JSON."""
    steps, _ = make_steps(cfg, args, device, [args.only])
    step = steps[args.only]
    if device.type == 'cuda':
        synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        step()
        synchronize(device)
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    else:
        base = rss_mib('VmRSS')
        step()
        step()
        peak = rss_mib('VmHWM') - base
    print(json.dumps(dict(side=args.only, peak_mib=peak)))


def measure_memory(args, side):
    """Peak memory of ``side`` in a child process (see the module doc)."""
    argv = [a for a in sys.argv[1:] if a not in ('--memory', '--memory-only')]
    out = subprocess.run([sys.executable, __file__, *argv, '--only', side],
                         check=True,
                         capture_output=True,
                         text=True,
                         env=dict(os.environ)).stdout
    return json.loads(out.strip().splitlines()[-1])['peak_mib']


def main():
    args = parse_args()
    quiet_library_warnings()
    cfg = load_config(
        args.config if os.path.isfile(args.config) else get_config_path(args.config),
        args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    device = torch.device(args.device)
    if args.only:
        memory_child(cfg, args, device)
        return

    if args.memory_only:
        report_memory(args, device)
        return
    steps, params = make_steps(cfg, args, device, SIDES)
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    times = {side: [] for side in SIDES}
    for i in range(args.iters):
        order = SIDES if i % 2 == 0 else SIDES[::-1]
        for side in order:
            times[side].append(time_call(steps[side], device))
    medians = {side: statistics.median(values) for side, values in times.items()}

    print(f'config: {args.config}  device: {device}  batch: {args.batch_size}  '
          f'dtype: {"bf16 autocast" if args.amp else "fp32"}  fused AdamW: {args.fused}  '
          f'compile: {args.compile}  with_cp (ours): {args.with_cp}  '
          f'optimizer step: {not args.no_optimizer_step}  '
          f'threads: {torch.get_num_threads()}')
    for side in SIDES:
        print(f'{side:>9}: {medians[side] * 1e3:8.1f} ms/step  '
              f'{args.batch_size / medians[side]:7.2f} pairs/s  '
              f'{params[side] / 1e6:.1f} M params  '
              f'(steps: {", ".join(f"{t * 1e3:.0f}" for t in times[side])} ms)')
    ratios = [b / a for a, b in zip(times['ours'], times['open_clip'])]
    print(f'speed ours / open_clip: {medians["open_clip"] / medians["ours"]:.3f}x '
          f'(median of per-pair ratios {statistics.median(ratios):.3f}x)')
    if args.profile:
        from torch.profiler import ProfilerActivity, profile
        activities = [ProfilerActivity.CPU
                      ] + ([ProfilerActivity.CUDA] if device.type == 'cuda' else [])
        for side in SIDES:
            with profile(activities=activities) as profiler:
                time_call(steps[side], device)
            print(f'profile of one {side} step:')
            print(profiler.key_averages().table(sort_by='self_cpu_time_total', row_limit=12))
    if args.memory:
        del steps
        report_memory(args, device)


def report_memory(args, device):
    peaks = {side: measure_memory(args, side) for side in SIDES}
    kind = 'max allocated' if device.type == 'cuda' else 'peak RSS increase'
    print(f'memory, batch {args.batch_size}, {"bf16 autocast" if args.amp else "fp32"}, '
          f'with_cp (ours): {args.with_cp}, '
          f'{"forward+backward only" if args.no_optimizer_step else "full step"}')
    for side in SIDES:
        print(f'{side:>9}: {kind} over the step {peaks[side]:8.0f} MiB')
    print(f'memory ours / open_clip: {peaks["ours"] / peaks["open_clip"]:.3f}')


if __name__ == '__main__':
    main()
