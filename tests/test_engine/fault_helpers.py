"""Test-only hooks for the fault tests (slow steps, a save that hangs, a disk that fills up) and
the helpers that start runs and find their torchrun workers.

Imported by the test configs through ``custom_imports``; registered into silc-seg's HOOKS.
"""
import os
import os.path as osp
import subprocess
import sys
import time
from pathlib import Path

import torch
from mmengine.hooks import Hook

from silc_seg.registry import HOOKS
from silc_seg.utils.checkpoint import torch_load_weights_only

REPO = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')


@HOOKS.register_module()
class StepDelayHook(Hook):
    """Sleeps after every iteration, so that a test can signal a run mid-training."""

    def __init__(self, seconds: float = 0.2) -> None:
        self.seconds = seconds

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        time.sleep(self.seconds)


@HOOKS.register_module()
class HangingSaveHook(Hook):
    """Makes the save of ``name`` hang after its bytes are in the temporary file, before the
    rename (``os.fsync`` of that file blocks), and writes ``marker`` then: a slow disk on which
    the test can kill -9 the process mid-save."""

    def __init__(self, name: str, marker: str) -> None:
        self.name = name
        self.marker = marker

    def before_run(self, runner) -> None:
        real_fsync = os.fsync

        def fsync(fd):
            target = os.readlink(f'/proc/self/fd/{fd}') if isinstance(fd, int) else ''
            if f'.{self.name}.tmp-' in osp.basename(target):
                with open(self.marker, 'w') as file:
                    file.write(f'{target} {os.path.getsize(target)}')
                time.sleep(600)
            return real_fsync(fd)

        os.fsync = fsync


@HOOKS.register_module()
class FillDiskHook(Hook):
    """After iteration ``after_iter`` (and its checkpoint), fills the file system of ``folder``
    up to ``leave`` free bytes with ``folder/filler``."""

    priority = 'LOWEST'

    def __init__(self, folder: str, after_iter: int, leave: int = 4096) -> None:
        self.folder = folder
        self.after_iter = after_iter
        self.leave = leave

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 != self.after_iter:
            return
        free = os.statvfs(self.folder)
        size = free.f_bavail * free.f_frsize - self.leave
        with open(osp.join(self.folder, 'filler'), 'wb') as file:
            file.write(b'\0' * max(size, 0))


def toy_config(checkpoint: str = '',
               custom_hooks: str = '',
               num_workers: int = 0,
               interval: int = 2) -> str:
    """A tools/train.py config: ToyRegressor, 8 iterations, SafeCheckpointHook every ``interval``
    with ``checkpoint`` appended to its arguments, PreemptionHook, and ``custom_hooks``."""
    return f'''
default_scope = 'mmseg'
custom_imports = dict(imports=['silc_seg', 'tests.test_foundation.toy_modules',
                               'tests.test_engine.fault_helpers'], allow_failed_imports=False)
model = dict(type='ToyRegressor')
train_dataloader = dict(
    batch_size=4, num_workers={num_workers}, sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'), dataset=dict(type='ToyRegressionDataset', size=64))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=8)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=0.01))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=8, by_epoch=False)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='SafeCheckpointHook', interval={interval}, by_epoch=False,
                    {checkpoint}),
    preemption=dict(type='PreemptionHook'))
custom_hooks = [{custom_hooks}]
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, deterministic=True)
'''


def write_toy_config(folder, name, **kwargs) -> Path:
    path = Path(folder) / name
    path.write_text(toy_config(**kwargs))
    return path


def rank_pid(launcher_pid, rank, timeout=120):
    """The pid of the torchrun worker with RANK=rank (a child of the launcher)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for stat in Path('/proc').glob('[0-9]*/stat'):
            try:
                ppid = int(stat.read_text().rsplit(')', 1)[1].split()[1])
                environ = (stat.parent / 'environ').read_bytes().split(b'\0')
            except (OSError, IndexError, ValueError):
                continue
            if ppid == launcher_pid and f'RANK={rank}'.encode() in environ:
                return int(stat.parent.name)
        time.sleep(0.1)
    raise AssertionError(f'no worker with RANK={rank} under pid {launcher_pid}')


def train_cmd(config, work_dir, *extra):
    return [
        sys.executable,
        str(REPO / 'tools' / 'train.py'),
        str(config), '--work-dir',
        str(work_dir), *extra
    ]


def run(cmd, timeout=300):
    return subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout)


def assert_same_weights(actual, expected):
    """The two checkpoints hold bit-identical weights (same ops in the same order on CPU)."""
    actual = torch_load_weights_only(str(actual))['state_dict']
    expected = torch_load_weights_only(str(expected))['state_dict']
    assert actual.keys() == expected.keys()
    for key in expected:
        assert torch.equal(actual[key], expected[key]), key
