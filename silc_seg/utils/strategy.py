"""Configs with ``strategy=...``: MMEngine's FlexibleRunner (FSDP, DeepSpeed), also on CPU."""
import logging

import torch
from mmengine.config import Config
from mmengine.logging import print_log


def prepare_strategy_cfg(cfg: Config, launcher: str) -> bool:
    """Let ``tools/train.py`` run a config that names a ``strategy`` (``FSDPStrategy``,
    ``DeepSpeedStrategy``, ...) with MMEngine's ``FlexibleRunner``.

    - ``runner_type`` defaults to ``'FlexibleRunner'`` (mmseg's own ``tools/train.py`` builds
      ``RUNNERS.build(cfg)`` whenever a config has ``runner_type``, so configs set it too);
    - FSDP needs a process group: a run without ``--launcher pytorch|slurm|mpi`` stops with a
      clear message;
    - without a GPU, FSDP's ``device_id`` (MMEngine passes ``LOCAL_RANK``, a CUDA index) becomes
      ``'cpu'`` (torch 2.14's FSDP refuses a CPU module without it) on gloo (joined by
      :func:`~silc_seg.utils.setup_cpu_distributed`), and a ``mixed_precision`` policy is
      dropped with a warning: bf16 FSDP is for GPUs, the CPU run is fp32.

    Args:
        cfg (Config): The config, modified in place.
        launcher (str): ``--launcher``.

    Returns:
        bool: Whether the config has a strategy.
    """
    strategy = cfg.get('strategy', None)
    if not strategy:
        return False
    cfg.setdefault('runner_type', 'FlexibleRunner')
    if strategy.get('type') not in ('FSDPStrategy', 'SILCFSDPStrategy'):
        return True
    if launcher == 'none':
        raise SystemExit('FSDPStrategy shards the model over a process group: launch with '
                         'torchrun ... tools/train.py CONFIG --launcher pytorch (one process '
                         'per GPU, or per CPU slot with gloo); without a launcher, train the '
                         'non-FSDP config it inherits')
    if torch.cuda.is_available():
        return True
    wrapper = dict(strategy.get('model_wrapper', None) or {})
    wrapper['device_id'] = 'cpu'
    dropped = wrapper.pop('mixed_precision', None)
    if dropped is not None:
        print_log(
            f'No GPU: FSDP runs in fp32 on CPU (ignoring mixed_precision={dropped})',
            logger='current',
            level=logging.WARNING)
    strategy['model_wrapper'] = wrapper
    return True
