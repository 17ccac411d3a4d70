"""Save-then-resume through MMEngine 0.10.7 on torch>=2.6 (weights-only loading)."""
import io
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

from silc_seg.utils import from_safe_checkpoint, to_safe_checkpoint

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
    cmd = [sys.executable, str(REPO / 'tools' / 'train.py'),
           str(config), '--work-dir', str(work_dir), *extra]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_history_buffer_round_trip():
    buf = HistoryBuffer([1.5, 2.5, 3.0], [1, 2, 1], max_length=10)
    ckpt = {'message_hub': {'log_scalars': {'train/loss': buf},
                            'runtime_info': {'iter': 3, 'scale': np.float32(2.0),
                                             'hist': np.arange(4)}},
            'meta': {'epoch': 0}, 'state_dict': {'w': torch.ones(2)}}
    buffer = io.BytesIO()
    torch.save(to_safe_checkpoint(ckpt), buffer)
    buffer.seek(0)
    restored = from_safe_checkpoint(torch.load(buffer, weights_only=True))
    rbuf = restored['message_hub']['log_scalars']['train/loss']
    assert isinstance(rbuf, HistoryBuffer) and rbuf.max_length == 10
    np.testing.assert_array_equal(rbuf.data[0], [1.5, 2.5, 3.0])
    np.testing.assert_array_equal(rbuf.data[1], [1, 2, 1])
    assert restored['message_hub']['runtime_info']['scale'] == 2.0
    np.testing.assert_array_equal(restored['message_hub']['runtime_info']['hist'], np.arange(4))


def test_train_save_resume(tmp_path):
    # The runner dumps the merged config into the work dir: keep the source elsewhere.
    config = tmp_path / 'toy.py'
    config.write_text(TOY_CONFIG)
    straight_dir = tmp_path / 'straight'
    straight = run_train(config, straight_dir)
    assert straight.returncode == 0, straight.stderr[-3000:]

    ckpt_path = straight_dir / 'iter_4.pth'
    # The checkpoint must load under torch's default weights-only unpickler ...
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=True)
    assert ckpt['meta']['iter'] == 4
    # ... and still carry the logged history, restored as HistoryBuffers.
    hub = from_safe_checkpoint(ckpt)['message_hub']
    assert isinstance(hub['log_scalars']['train/loss'], HistoryBuffer)

    # Second half in a fresh work dir, resumed from the half-way checkpoint of the first run.
    work_dir = tmp_path / 'resumed'
    resumed = run_train(config, work_dir, '--resume', str(ckpt_path))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not (work_dir / 'iter_4.pth').exists()
    final = torch.load(work_dir / 'iter_8.pth', map_location='cpu', weights_only=True)
    assert final['meta']['iter'] == 8
    reference = torch.load(straight_dir / 'iter_8.pth', map_location='cpu', weights_only=True)
    # Optimizer state, LR schedule and data position all continue: identical weights
    # (CPU, deterministic; bitwise up to float32 rounding).
    for key, value in reference['state_dict'].items():
        torch.testing.assert_close(final['state_dict'][key], value, rtol=0, atol=1e-6)
    assert final['param_schedulers'] == reference['param_schedulers']


def test_plain_mmengine_checkpoint_is_refused(tmp_path):
    """Without the conversion, torch's weights-only loader refuses MMEngine's message hub:
    this is the failure the SafeCheckpointHook exists for."""
    ckpt = {'message_hub': {'log_scalars': {'loss': HistoryBuffer([1.0], [1])}}}
    torch.save(ckpt, tmp_path / 'plain.pth')
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / 'plain.pth', weights_only=True)
    torch.save(to_safe_checkpoint(ckpt), tmp_path / 'safe.pth')
    torch.load(tmp_path / 'safe.pth', weights_only=True)


def test_two_process_cpu_launch(tmp_path):
    """``--launcher pytorch`` on a machine without a GPU trains with gloo and DDP on CPU, and both
    ranks end with the same weights."""
    config = tmp_path / 'toy.py'
    config.write_text(TOY_CONFIG)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
           '--master_port', '29631', str(REPO / 'tools' / 'train.py'), str(config),
           '--work-dir', str(tmp_path / 'work'), '--launcher', 'pytorch',
           '--cfg-options', 'train_cfg.max_iters=4', 'log_level=INFO']
    env = dict(os.environ, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES='')
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ckpt = torch.load(tmp_path / 'work' / 'iter_4.pth', map_location='cpu', weights_only=True)
    assert ckpt['meta']['iter'] == 4
    log = result.stdout + result.stderr
    assert 'Distributed training: True' in log and 'GPU number: 2' in log, log[-3000:]
