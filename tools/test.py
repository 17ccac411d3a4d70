"""Test (and evaluate) a model with the MMEngine runner, mmseg style.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR] [--out DIR]
                         [--cfg-options k=v ...] [--launcher pytorch]

The checkpoint may be a runner checkpoint (``.pth``), a converted state dict, or a
``.safetensors`` file. Keys the model needs but the checkpoint lacks, and tensors of another
shape, are errors (evaluating partly random weights is meaningless); extra keys (teacher,
distillation head) are ignored.
"""
import argparse

from mmengine.config import Config
from mmengine.runner import Runner

import silc_seg  # noqa: F401  (registers every module into mmseg's registries)
from silc_seg.datasets import DataLayoutError, check_data_layout
from silc_seg.models.utils import unwrap_model
from silc_seg.utils import (ConfigOverrideError, add_cfg_options_argument, add_launcher_arguments,
                            apply_test_time_augmentation, close_process_group, export_local_rank,
                            load_model_checkpoint, prepare_runner_cfg, setup_cpu_distributed)
from silc_seg.utils.log_utils import quiet_library_warnings, runner_console_summary
from silc_seg.utils.threads import configure_threads


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file (.pth or .safetensors)')
    parser.add_argument(
        '--work-dir', help='the directory to save the evaluation results (json) and logs')
    parser.add_argument(
        '--out', type=str, help='the directory to save output predictions for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images (prediction overlays) are saved, as '
        '<show-dir>/<image name>.png')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--allow-missing-keys',
        action='store_true',
        help='evaluate even if the checkpoint lacks some of the model keys')
    add_cfg_options_argument(parser)
    add_launcher_arguments(parser)
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation: average the scores of flipped and rescaled views '
        "(the config's tta_pipeline, else one built from its test pipeline)")
    parser.add_argument(
        '--tta-scales',
        nargs='+',
        type=float,
        default=[1.0],
        help='with --tta and no tta_pipeline in the config: size multipliers of the test '
        'resize, e.g. 0.75 1.0 1.25 (default: 1.0, flip only)')
    return export_local_rank(parser.parse_args())


def trigger_visualization_hook(cfg, args):
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise RuntimeError('VisualizationHook must be included in default_hooks, e.g. '
                           "visualization=dict(type='SegVisualizationHook')")
    visualization_hook = default_hooks['visualization']
    visualization_hook['draw'] = True
    # Every test image, whatever interval the config keeps for drawing during training.
    visualization_hook['interval'] = 1
    if args.show:
        visualization_hook['show'] = True
        visualization_hook['wait_time'] = args.wait_time
    if args.show_dir:
        cfg.visualizer['save_dir'] = args.show_dir
        # The overlays themselves go to DIR/<image name>.png (mmseg's hook: vis_data/vis_image/).
        if visualization_hook.get('type') in ('SegVisualizationHook',
                                              'mmseg.SegVisualizationHook'):
            visualization_hook['type'] = 'SegOverlayHook'
            visualization_hook['out_dir'] = args.show_dir
    return cfg


def main():
    args = parse_args()
    quiet_library_warnings()
    cfg = Config.fromfile(args.config)
    try:
        prepare_runner_cfg(cfg, args.config, args.work_dir, args.cfg_options, args.launcher)
    except ConfigOverrideError as err:
        raise SystemExit(f'--cfg-options {err}')
    setup_cpu_distributed(cfg, args.launcher)
    configure_threads(cfg, 'test_dataloader')  # main process + dataloader workers
    # Loaded below, after the key check, instead of by the runner.
    cfg.load_from = None

    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        apply_test_time_augmentation(cfg, args.tta_scales)
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True

    try:  # before the model and the checkpoint load (minutes for large towers)
        check_data_layout(cfg, ['test_dataloader'])
    except DataLayoutError as err:
        raise SystemExit(str(err))
    with runner_console_summary():  # the full config and hook order go to the log file
        runner = Runner.from_cfg(cfg)
    model = unwrap_model(runner.model)  # the segmentor, also inside the --tta wrapper
    load_model_checkpoint(model, args.checkpoint, allow_missing=args.allow_missing_keys)
    runner.test()
    close_process_group()


if __name__ == '__main__':
    main()
