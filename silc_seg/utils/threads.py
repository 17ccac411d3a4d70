"""CPU thread counts of the main process and the dataloader workers.

PyTorch's main process takes one intra-op thread per core by default, while each dataloader
worker takes one (PyTorch sets it in every worker) and OpenCV none beyond it (MMEngine's
``env_cfg.mp_cfg.opencv_num_threads=0``). With ``W`` busy workers, the main process then runs
more threads than there are cores; its threads meet at a barrier after every operation, so when
a worker, or any other process, holds a core, each operation waits for the slowest thread and a
step gets several times slower instead of at most two (docs/data.md, "Threads").
"""
import logging
import os
from typing import Optional, Tuple

import torch
from mmengine.logging import print_log


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. under ``taskset`` or Slurm)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_num_threads(num_workers: int,
                        cores: Optional[int] = None,
                        local_world_size: int = 1) -> int:
    """Intra-op threads of one rank's main process beside ``num_workers`` dataloader workers.

    The cores of the machine are shared by the ranks on it (``LOCAL_WORLD_SIZE``), and each
    rank's share by its main process and its workers, one core each for a worker, so that none
    waits for a core another holds: ``max(1, cores // local_world_size // (1 + num_workers))``
    for the main process; its workers keep PyTorch's one thread each.

    Args:
        num_workers (int): Dataloader workers of the rank's training (or test) dataloader.
        cores (int, optional): Cores of the machine; defaults to :func:`available_cores`.
        local_world_size (int): Ranks on this machine. Defaults to 1.

    Returns:
        int: At least 1.
    """
    cores = available_cores() if cores is None else cores
    per_rank = max(1, cores // max(1, local_world_size))
    return max(1, per_rank // (1 + max(0, num_workers)))


def configure_threads(cfg, loader_key: str = 'train_dataloader') -> Tuple[int, str]:
    """Set the main process's intra-op threads for the run of ``cfg`` (tools call this before
    they build the runner; nothing happens at import).

    ``env_cfg.num_threads`` (an int, or ``'auto'``, the default) chooses; with ``'auto'`` an
    ``OMP_NUM_THREADS`` in the environment is kept as the user's choice, otherwise
    :func:`default_num_threads` of the dataloader's ``num_workers`` applies.

    Args:
        cfg (Config | dict): The run's config.
        loader_key (str): The dataloader whose workers share the cores. Defaults to
            ``'train_dataloader'``.

    Returns:
        tuple[int, str]: The thread count now set and where it came from.
    """
    env_cfg = cfg.get('env_cfg') or {}
    setting = env_cfg.get('num_threads', 'auto')
    if setting != 'auto':
        if not isinstance(setting, int) or isinstance(setting, bool) or setting < 1:
            raise ValueError(f"env_cfg.num_threads must be a positive int or 'auto', "
                             f'got {setting!r}')
        threads, source = setting, 'env_cfg.num_threads'
    elif os.environ.get('OMP_NUM_THREADS'):
        return torch.get_num_threads(), 'OMP_NUM_THREADS'
    else:
        loader = cfg.get(loader_key) or {}
        num_workers = int(loader.get('num_workers', 0) or 0)
        local_world_size = int(os.environ.get('LOCAL_WORLD_SIZE', 1))
        threads = default_num_threads(num_workers, local_world_size=local_world_size)
        source = (f'{available_cores()} cores / {local_world_size} rank(s) / '
                  f'(1 + {num_workers} dataloader workers)')
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
        print_log(
            f'{threads} intra-op thread(s) in the main process ({source}; '
            "env_cfg.num_threads=N or OMP_NUM_THREADS sets it)",
            logger='current',
            level=logging.INFO)
    return threads, source
