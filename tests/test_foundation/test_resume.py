"""Save-then-resume through MMEngine 0.10.7 on torch>=2.6 (weights-only loading)."""
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from silc_seg.utils import CheckpointRefusedError, torch_load_weights_only
from tests.launch import torchrun

REPO = Path(__file__).resolve().parents[2]

TOY_CONFIG = textwrap.dedent('''
    default_scope = 'mmseg'
    custom_imports = dict(imports=['silc_seg', 'tests.test_foundation.toy_modules'],
                          allow_failed_imports=False)
    model = dict(type='ToyRegressor')
    train_dataloader = dict(
        batch_size=4, num_workers=0,
        sampler=dict(type='InfiniteSampler', shuffle=True),
        collate_fn=dict(type='default_collate'),
        dataset=dict(type='ToyRegressionDataset', size=64))
    train_cfg = dict(type='IterBasedTrainLoop', max_iters=8)
    optim_wrapper = dict(type='OptimWrapper',
                         optimizer=dict(type='AdamW', lr=0.01, weight_decay=0.01))
    param_scheduler = [dict(type='CosineAnnealingLR', T_max=8, by_epoch=False)]
    default_hooks = dict(
        logger=dict(type='LoggerHook', interval=1),
        checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False))
    randomness = dict(seed=0, deterministic=True)
    log_level = 'WARNING'
''')


def run_train(config, work_dir, *extra):
    cmd = [
        sys.executable,
        str(REPO / 'tools' / 'train.py'),
        str(config), '--work-dir',
        str(work_dir), *extra
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_history_buffer_round_trip(tmp_path):
    """An ordinary MMEngine message hub (history buffers, numpy arrays and scalars) loads
    weights-only through silc-seg's loader, as it was saved."""
    buf = HistoryBuffer([1.5, 2.5, 3.0], [1, 2, 1], max_length=10)
    ckpt = {
        'message_hub': {
            'log_scalars': {
                'train/loss': buf
            },
            'runtime_info': {
                'iter': 3,
                'scale': np.float32(2.0),
                'hist': np.arange(4)
            }
        },
        'meta': {
            'epoch': 0
        },
        'state_dict': {
            'w': torch.ones(2)
        }
    }
    torch.save(ckpt, tmp_path / 'plain.pth')
    restored = torch_load_weights_only(str(tmp_path / 'plain.pth'))
    rbuf = restored['message_hub']['log_scalars']['train/loss']
    assert isinstance(rbuf, HistoryBuffer) and rbuf.max_length == 10
    np.testing.assert_array_equal(rbuf.data[0], [1.5, 2.5, 3.0])
    np.testing.assert_array_equal(rbuf.data[1], [1, 2, 1])
    assert rbuf.mean() == pytest.approx(7.0 / 4)  # sum of values / sum of counts
    scale = restored['message_hub']['runtime_info']['scale']
    assert scale == 2.0 and scale.dtype == np.float32
    np.testing.assert_array_equal(restored['message_hub']['runtime_info']['hist'], np.arange(4))


@pytest.mark.slow
def test_train_save_resume(tmp_path):
    # The runner dumps the merged config into the work dir: keep the source elsewhere.
    config = tmp_path / 'toy.py'
    config.write_text(TOY_CONFIG)
    straight_dir = tmp_path / 'straight'
    straight = run_train(config, straight_dir)
    assert straight.returncode == 0, straight.stderr[-3000:]

    ckpt_path = straight_dir / 'iter_4.pth'
    # An ordinary MMEngine checkpoint: it loads weights-only with the admitted MMEngine types
    # and carries the logged history as HistoryBuffers.
    ckpt = torch_load_weights_only(str(ckpt_path))
    assert ckpt['meta']['iter'] == 4
    assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'], HistoryBuffer)

    # Second half in a fresh work dir, resumed from the half-way checkpoint of the first run.
    work_dir = tmp_path / 'resumed'
    resumed = run_train(config, work_dir, '--resume', str(ckpt_path))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not (work_dir / 'iter_4.pth').exists()
    final = torch_load_weights_only(str(work_dir / 'iter_8.pth'))
    assert final['meta']['iter'] == 8
    reference = torch_load_weights_only(str(straight_dir / 'iter_8.pth'))
    # Optimizer state, LR schedule and data position all continue: identical weights
    # (CPU, deterministic; bitwise up to float32 rounding).
    for key, value in reference['state_dict'].items():
        torch.testing.assert_close(final['state_dict'][key], value, rtol=0, atol=1e-6)
    assert final['param_schedulers'] == reference['param_schedulers']


def test_admitted_types_do_not_loosen_torch_load(tmp_path):
    """The MMEngine types are admitted only inside silc-seg's loader: torch.load itself still
    refuses them after ``import silc_seg``, and the loader still refuses other objects."""
    ckpt = {'message_hub': {'log_scalars': {'loss': HistoryBuffer([1.0], [1])}}}
    torch.save(ckpt, tmp_path / 'plain.pth')
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / 'plain.pth', weights_only=True)
    assert isinstance(
        torch_load_weights_only(str(tmp_path / 'plain.pth'))['message_hub']['log_scalars']['loss'],
        HistoryBuffer)
    torch.save({'names': np.array(['a', None], dtype=object)}, tmp_path / 'object.pth')
    with pytest.raises(CheckpointRefusedError, match='object.pth'):
        torch_load_weights_only(str(tmp_path / 'object.pth'))


@pytest.mark.dist
def test_two_process_cpu_launch(tmp_path):
    """``--launcher pytorch`` on a machine without a GPU trains with gloo and DDP on CPU, and both
    ranks end with the same weights."""
    config = tmp_path / 'toy.py'
    config.write_text(TOY_CONFIG)
    cmd = [
        *torchrun(2),
        str(REPO / 'tools' / 'train.py'),
        str(config), '--work-dir',
        str(tmp_path / 'work'), '--launcher', 'pytorch', '--cfg-options', 'train_cfg.max_iters=4',
        'log_level=INFO'
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES='')
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ckpt = torch_load_weights_only(str(tmp_path / 'work' / 'iter_4.pth'))
    assert ckpt['meta']['iter'] == 4
    log = result.stdout + result.stderr
    assert 'Distributed launcher pytorch, GPU number 2' in log, log[-3000:]
