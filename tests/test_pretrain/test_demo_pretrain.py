"""The demo pretraining configs through tools/train.py: resume identity and a 2-process run."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from silc_seg.utils.checkpoint import torch_load_weights_only
from silc_seg.utils.demo_data import make_demo_data
from tests.launch import torchrun

REPO = Path(__file__).resolve().parents[2]
CONFIGS = ['configs/silc/demo_silc_tiny.py', 'configs/silc/demo_clip_tiny.py']
# Masked self-distillation (MaskCLIP of Dong et al.), alone and with SILC.
MASKED_CONFIGS = [
    'configs/silc/demo_maskdistill_tiny.py', 'configs/silc/demo_silc-maskdistill_tiny.py'
]


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo')
    make_demo_data(str(root), num_train=48, num_val=8, image_size=96, seed=0)
    return root


def small_run_options(demo_root, max_iters, batch_size=4):
    """Shrink a demo config to a few iterations on a handful of images, without validation."""
    return [
        f'train_dataloader.dataset.data_root={demo_root}',
        f'train_dataloader.batch_size={batch_size}',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        f'train_cfg.max_iters={max_iters}',
        'val_dataloader=None',
        'val_cfg=None',
        'val_evaluator=None',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.checkpoint.max_keep_ckpts=-1',
        'default_hooks.logger.interval=1',
        'randomness.seed=0',
        'randomness.deterministic=True',
    ]


def run(cmd, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    result = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def train(config, work_dir, options, *extra):
    return run([
        sys.executable, 'tools/train.py', config, '--work-dir',
        str(work_dir), *extra, '--cfg-options', *options
    ])


def load_state(path):
    # Weights-only, admitting MMEngine's checkpoint types (the message hub's history).
    return torch_load_weights_only(str(path))['state_dict']


@pytest.mark.slow
@pytest.mark.parametrize('config', CONFIGS[:1] + MASKED_CONFIGS[:1])
def test_resume_gives_identical_weights(config, demo_root, tmp_path):
    """4 iterations straight == 2 iterations, --resume, 2 more (same seed, CPU)."""
    options = small_run_options(demo_root, max_iters=4)
    straight = tmp_path / 'straight'
    train(config, straight, options)
    resumed = tmp_path / 'resumed'
    resumed.mkdir()
    shutil.copy(straight / 'iter_2.pth', resumed / 'iter_2.pth')
    log = train(config, resumed, options, '--resume', str(resumed / 'iter_2.pth'))
    assert 'resumed' in (log.stdout + log.stderr).lower()

    expected, actual = load_state(straight / 'iter_4.pth'), load_state(resumed / 'iter_4.pth')
    assert expected.keys() == actual.keys()
    assert any(k.startswith('teacher_image_encoder.') for k in expected)
    first_half = load_state(straight / 'iter_2.pth')
    assert any(not torch.equal(first_half[k], expected[k]) for k in expected)
    # Same ops in the same order on CPU: bit-identical (tolerance 0).
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
    if config in MASKED_CONFIGS:
        # The masked branch's state travels: tokenizer head, its center, the mask counter.
        assert int(expected['mask_step']) == 4 and int(first_half['mask_step']) == 2
        assert any(k.startswith('teacher_masked_head.') for k in expected)
        assert 'masked_distill_loss.center' in expected


@pytest.mark.slow
@pytest.mark.parametrize('config', MASKED_CONFIGS[1:])
def test_masked_distill_demo_trains(config, demo_root, tmp_path):
    """The SILC + masked self-distillation demo through tools/train.py (2 iterations)."""
    options = small_run_options(demo_root, max_iters=2, batch_size=2)
    log = train(config, tmp_path, options)
    text = log.stdout + log.stderr
    for name in ('loss_contrastive', 'loss_distill', 'loss_mask_distill', 'loss_mlm'):
        assert name in text, name
    state = load_state(tmp_path / 'iter_2.pth')
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


@pytest.mark.dist
def test_two_process_gloo_run(demo_root, tmp_path):
    """Two CPU processes (torchrun, gloo, DistributedDataParallel) train the demo SILC config
    through ``tools/train.py --launcher pytorch``, the way a user launches it."""
    work_dir = tmp_path / 'dist'
    options = small_run_options(demo_root, max_iters=2, batch_size=2)
    log = run([
        *torchrun(2), 'tools/train.py', CONFIGS[0], '--work-dir',
        str(work_dir), '--launcher', 'pytorch', '--cfg-options', *options, 'log_level=INFO'
    ])
    text = log.stdout + log.stderr
    assert 'Distributed launcher pytorch, GPU number 2' in text, text[-3000:]
    state = load_state(work_dir / 'iter_2.pth')
    assert any(k.startswith('teacher_image_encoder.') for k in state)
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    logs = list(work_dir.glob('*/*.log'))
    assert logs and 'skipped_samples' in logs[0].read_text()
    # The CPU setup of tools/train.py wraps the model in the config's DDP wrapper (the model's
    # own train_step, with the EMA update) without device ids, and the optimizer wrapper is the
    # config's non-finite guard (the full config is in the log file, not on the terminal).
    log_text = logs[0].read_text()
    assert "type='mmseg.TrainStepDDP'" in log_text
    assert "type='NonFiniteGuardOptimWrapper'" in log_text
