"""Train (pretrain SILC, or fine-tune a segmentor) with the MMEngine runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
    bash tools/dist_train.sh CONFIG GPUS [...]          # torchrun, --launcher pytorch
"""
import argparse
import logging

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner

import silc_seg  # noqa: F401  (registers every module into mmseg's registries)
from silc_seg.datasets import DataLayoutError, check_data_layout
from silc_seg.engine.checkpointing import find_resumable_checkpoint, nothing_to_resume
from silc_seg.registry import RUNNERS
from silc_seg.utils import (AMP_WRAPPERS, ConfigOverrideError, add_cfg_options_argument,
                            add_launcher_arguments, close_process_group, export_local_rank,
                            fp32_without_gpu, prepare_runner_cfg, prepare_strategy_cfg,
                            setup_cpu_distributed)
from silc_seg.utils.log_utils import quiet_library_warnings, runner_console_summary
from silc_seg.utils.threads import configure_threads


def parse_args():
    parser = argparse.ArgumentParser(description='Train with silc-seg')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or, with no value, from the '
        'latest checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic mixed precision training')
    parser.add_argument(
        '--amp-dtype',
        choices=['float16', 'bfloat16'],
        default='float16',
        help='dtype used by --amp (bfloat16 needs no loss scaling)')
    add_cfg_options_argument(parser)
    add_launcher_arguments(parser)
    return export_local_rank(parser.parse_args())


def main():
    args = parse_args()
    quiet_library_warnings()
    cfg = Config.fromfile(args.config)
    try:
        prepare_runner_cfg(cfg, args.config, args.work_dir, args.cfg_options, args.launcher)
    except ConfigOverrideError as err:
        raise SystemExit(f'--cfg-options {err}')
    # strategy=dict(type='FSDPStrategy', ...): MMEngine's FlexibleRunner (docs/scaling.md).
    prepare_strategy_cfg(cfg, args.launcher)
    setup_cpu_distributed(cfg, args.launcher)
    configure_threads(cfg)  # main process + dataloader workers within the cores

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper in AMP_WRAPPERS.values():
            print_log(
                'AMP training is already enabled in your config.',
                logger='current',
                level=logging.WARNING)
        else:
            assert optim_wrapper in AMP_WRAPPERS, (
                '`--amp` is only supported when the optimizer wrapper type is one of '
                f'{sorted(AMP_WRAPPERS)} but got {optim_wrapper}.')
            cfg.optim_wrapper.type = AMP_WRAPPERS[optim_wrapper]
            cfg.optim_wrapper.dtype = args.amp_dtype
            if args.amp_dtype == 'float16':
                cfg.optim_wrapper.loss_scale = 'dynamic'
    fp32_without_gpu(cfg)

    if args.resume == 'auto':
        nothing = nothing_to_resume(cfg.work_dir)
        if nothing:
            raise SystemExit(nothing)
        cfg.resume = True
        cfg.load_from = None
        if cfg.get('runner_type') == 'FlexibleRunner':
            # It loads before the before_run hooks, where SafeCheckpointHook picks the newest
            # complete checkpoint for Runner: pick it here.
            strict = (cfg.get('default_hooks') or {}).get('checkpoint', {}).get('strict_resume')
            cfg.load_from = find_resumable_checkpoint(cfg.work_dir, strict=bool(strict))
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    try:  # before the model is built
        check_data_layout(cfg, ['train_dataloader', 'val_dataloader'])
    except DataLayoutError as err:
        raise SystemExit(str(err))
    with runner_console_summary():  # the full config and hook order go to the log file
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()
    close_process_group()


if __name__ == '__main__':
    main()
