"""Time the SILC training step of an FSDP recipe, sharded as the config says, with its MFU.

Run it under ``torchrun`` (one process per GPU, or gloo processes on CPU)::

    torchrun --nproc_per_node 1 tools/analysis_tools/benchmark_fsdp_step.py \\
        configs/silc/pretrain_silc_vit-b16_fsdp.py --batch-size 256 --peak-tflops 989

The model, the optimizer wrapper and the FSDP strategy (wrapping policy, mixed precision,
activation checkpointing) are built from the config by MMEngine's strategy, exactly as
``FlexibleRunner`` builds them, and the step is the model's own ``train_step`` through
``TrainStepFSDP``: student forward and backward on the global and local crops, teacher, head,
losses, optimizer step and the EMA update on the local shards. The batch is synthetic
(``benchmark_step.make_batch``: uint8 crops and random tokens, ``--batch-size`` pairs per
rank), so the data pipeline is not timed, nor are the hooks (per-parameter clipping, logging).
Printed: the median step time over ``--iters`` steps after ``--warmup``, pairs/s per rank and
in all, peak device memory, and with ``--peak-tflops`` (the dense peak of one device for the
compute dtype, e.g. 989 for H100 SXM / H200 bf16) the model FLOP utilisation: the analytical
FLOPs of the step per rank (``benchmark_step.step_flops``) / time / peak. With ``--json FILE``
rank 0 also writes the figures there.
"""
import argparse
import json
import logging
import os
import os.path as osp
import statistics
import tempfile

import torch
import torch.distributed as dist
from mmengine.logging import MessageHub
from mmengine.registry import STRATEGIES, init_default_scope

import silc_seg  # noqa: F401  (registers every module into mmseg's registries)
from silc_seg.utils import import_file_as_module, prepare_strategy_cfg, setup_cpu_distributed
from silc_seg.utils.log_utils import mmengine_log_level, quiet_library_warnings
from silc_seg.utils.timing import time_call
from silc_seg.utils.tool_args import add_cfg_options_argument, load_config

step_tools = import_file_as_module(
    osp.join(osp.dirname(osp.abspath(__file__)), 'benchmark_step.py'), 'benchmark_step')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='pretraining config with an FSDP strategy')
    parser.add_argument('--batch-size', type=int, default=8, help='image-text pairs per rank')
    parser.add_argument('--iters', type=int, default=10, help='timed steps')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps first')
    parser.add_argument('--peak-tflops', type=float, help="one device's dense peak (MFU)")
    parser.add_argument('--json', help='rank 0 writes the figures to this file')
    add_cfg_options_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    quiet_library_warnings()
    cfg = load_config(args.config, args.cfg_options)
    if not cfg.get('strategy'):
        raise SystemExit(f'{args.config} has no strategy: use an FSDP recipe '
                         '(e.g. configs/silc/pretrain_silc_vit-b16_fsdp.py)')
    if cfg.model.get('distill_head') is None:
        raise SystemExit(f'{args.config} has no distill_head: not a SILC recipe')
    if 'RANK' not in os.environ:
        raise SystemExit('run it under torchrun (e.g. torchrun --nproc_per_node 1 ...)')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    # As tools/train.py: without a GPU, gloo and a CPU device for FSDP, the bf16 policy dropped.
    prepare_strategy_cfg(cfg, 'pytorch')
    setup_cpu_distributed(cfg, 'pytorch')
    device_type = 'cuda' if torch.cuda.is_available() else 'cpu'
    backend = 'nccl' if device_type == 'cuda' else 'gloo'
    with tempfile.TemporaryDirectory() as work_dir, mmengine_log_level(logging.WARNING):
        strategy = STRATEGIES.build(
            dict(
                cfg.strategy,
                work_dir=work_dir,
                env_kwargs=dict(launcher='pytorch', dist_cfg=dict(backend=backend))))
        torch.manual_seed(0)
        model, optim_wrapper = strategy.prepare(cfg.model, optim_wrapper=cfg.optim_wrapper)[:2]
    rank, world_size = dist.get_rank(), dist.get_world_size()
    device = torch.device(device_type, torch.cuda.current_device()) if device_type == 'cuda' \
        else torch.device('cpu')
    module = model.module
    global_size, local_size, num_global, num_local = step_tools.crop_settings(cfg, num_local=0)
    batch = step_tools.make_batch(args.batch_size, num_global, num_local, global_size, local_size,
                                  module.text_encoder.context_length)
    hub = MessageHub.get_current_instance()
    hub.update_info('max_iters', args.warmup + args.iters)

    losses = []

    def step(index):
        hub.update_info('iter', index)
        out = model.train_step(batch, optim_wrapper)
        losses.append(float(out['loss'].detach()))

    for index in range(args.warmup):
        step(index)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    times = [
        time_call(lambda index=index: step(args.warmup + index), device)
        for index in range(args.iters)
    ]
    seconds = statistics.median(times)
    # The analytical FLOPs are those of the unwrapped towers (same shapes on every rank).
    _, _, step_flops, _ = step_tools.step_flops(module, global_size, local_size, num_global,
                                                num_local)
    flops = step_flops * args.batch_size
    result = dict(
        config=args.config,
        world_size=world_size,
        device=str(device),
        batch_per_rank=args.batch_size,
        crops=f'{num_global}x{global_size} + {num_local}x{local_size}',
        param_dtype=str(getattr(getattr(model, 'mixed_precision', None), 'param_dtype', None)),
        step_ms=seconds * 1e3,
        pairs_per_s_per_rank=args.batch_size / seconds,
        pairs_per_s=world_size * args.batch_size / seconds,
        tflops_per_rank=flops / seconds / 1e12,
        losses_finite=all(torch.isfinite(torch.tensor(losses)).tolist()),
    )
    if device.type == 'cuda':
        result['peak_memory_gib'] = torch.cuda.max_memory_allocated(device) / 2**30
    if args.peak_tflops:
        result['mfu'] = result['tflops_per_rank'] / args.peak_tflops
    if rank == 0:
        for key, value in result.items():
            print(f'{key}: {value:.4g}' if isinstance(value, float) else f'{key}: {value}')
        if args.json:
            with open(args.json, 'w') as file:
                json.dump(dict(result, step_times_s=times, losses=losses), file, indent=1)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main()
