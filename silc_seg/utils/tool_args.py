"""Command-line arguments that the runner tools (tools/train.py, tools/test.py, ...) share."""
import argparse
import os
from typing import Optional

from mmengine.config import Config, DictAction

from .config import ConfigOverrideError, merge_cfg_options

CFG_OPTIONS_HELP = ('override settings in the config, in xxx=yyy format (lists: key="[a,b]" or '
                    'key=a,b); keys are checked against the config, +xxx=yyy adds a key it does '
                    'not have')


def add_cfg_options_argument(parser: argparse.ArgumentParser,
                             help: str = CFG_OPTIONS_HELP) -> None:
    """Add ``--cfg-options k=v ...`` (parsed by MMEngine's ``DictAction``).

    Args:
        parser (ArgumentParser): the tool's parser.
        help (str): the option's help.
    """
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help=help)


def add_launcher_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--launcher`` and the ``--local_rank`` / ``--local-rank`` that
    ``torch.distributed.launch`` passes (torch>=2.0 spells it with a dash); call
    :func:`export_local_rank` on the parsed arguments."""
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def export_local_rank(args: argparse.Namespace) -> argparse.Namespace:
    """Set ``LOCAL_RANK`` from ``args.local_rank`` unless the launcher has set it.

    Args:
        args (Namespace): parsed arguments of a parser given :func:`add_launcher_arguments`.

    Returns:
        Namespace: ``args``.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config and merge the ``--cfg-options`` into it (keys checked against it,
    :func:`~silc_seg.utils.merge_cfg_options`); a bad option stops the tool with the message.

    Args:
        path (str): the config file.
        cfg_options (dict, optional): the parsed ``--cfg-options``.

    Returns:
        Config: the config.
    """
    cfg = Config.fromfile(path)
    try:
        merge_cfg_options(cfg, cfg_options)
    except ConfigOverrideError as err:
        raise SystemExit(f'--cfg-options {err}')
    return cfg
