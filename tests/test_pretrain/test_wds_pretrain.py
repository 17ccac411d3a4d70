"""The WebDataset demo pretraining config through tools/train.py: a few iterations, a corrupt and
a missing shard, and --resume at the saved stream position without replaying."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from silc_seg.utils.checkpoint import torch_load_weights_only
from silc_seg.utils.demo_data import make_demo_data, write_demo_shards
from tests.launch import torchrun

REPO = Path(__file__).resolve().parents[2]
CONFIG = 'configs/silc/demo_silc_wds_tiny.py'


@pytest.fixture(scope='module')
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo_wds')
    make_demo_data(str(root), num_train=36, num_val=8, image_size=96, seed=0)
    paths = write_demo_shards(str(root), num_shards=6)
    # One shard cut short, one missing: skipped and counted, training goes on.
    data = Path(paths[2]).read_bytes()
    Path(paths[2]).write_bytes(data[:len(data) // 2 + 100])
    os.remove(paths[5])
    return str(root / 'shards' / 'train-{00000..00005}.tar')


def write_config(tmp_path, shards, max_iters=6, num_workers=None):
    """The shipped config shrunk to a few iterations, recording every sample it decodes."""
    cfg = Config.fromfile(str(REPO / CONFIG))
    cfg.custom_imports.imports = list(
        cfg.custom_imports.imports) + ['tests.test_pretrain.record_keys']
    dataset = cfg.train_dataloader.dataset
    dataset.shards = shards
    dataset.shuffle_buffer = 8
    dataset.pipeline = [
        dict(type='RecordKeys', path=str(tmp_path / 'decoded.txt')), *dataset.pipeline
    ]
    cfg.train_dataloader.batch_size = 4
    if num_workers is not None:
        cfg.train_dataloader.num_workers = num_workers
    cfg.train_cfg.max_iters = max_iters
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint.interval = 3
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    cfg.default_hooks.logger.interval = 1
    cfg.custom_hooks.append(dict(type='RecordBatchesHook', decoded=str(tmp_path / 'decoded.txt')))
    path = tmp_path / 'wds_tiny.py'
    cfg.dump(str(path))
    return str(path)


def train(config, work_dir, *extra, nproc=1):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    launch = [sys.executable]
    if nproc > 1:
        # CPU DDP through the user's path (tools/train.py sets up gloo).
        launch = torchrun(nproc)
        extra = (*extra, '--launcher', 'pytorch')
    result = subprocess.run(
        [*launch, 'tools/train.py', config, '--work-dir',
         str(work_dir), *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return output


@pytest.mark.slow
def test_wds_pretrain_runs_and_resumes_at_the_stream_position(shards, tmp_path):
    straight_dir, resumed_dir = tmp_path / 'straight', tmp_path / 'resumed'
    straight_dir.mkdir()
    resumed_dir.mkdir()
    output = train(write_config(straight_dir, shards), straight_dir)
    assert 'Iter(train) [6/6]' in output
    assert 'missing_shard' in output and 'corrupt_shard' in output
    assert (straight_dir / 'iter_3.pth').exists()

    output = train(
        write_config(resumed_dir, shards), resumed_dir, '--resume',
        str(straight_dir / 'iter_3.pth'))
    assert 'Iter(train) [6/6]' in output
    decoded = open(resumed_dir / 'decoded.txt').read().split('---\n')
    # Before the checkpoint is loaded, the workers the loop starts may decode a few batches;
    # they are stopped and their samples dropped. From the start of training on, none of the
    # 12 samples of iterations 1-3 is decoded again (the stream crosses into epoch 1 during the
    # run, so samples are told apart by epoch and key)...
    assert len(decoded) == 2
    resumed = decoded[1].split()
    first_three = {line.split()[1] for line in _trained_keys(straight_dir)[:12]}
    assert first_three and not first_three & set(resumed)
    # ...the loop loads only the 3 batches it trains on (MMEngine's replay loads 6)...
    assert (resumed_dir / 'batches_loaded_rank0.txt').read_text() == '3'
    assert (straight_dir / 'batches_loaded_rank0.txt').read_text() == '6'
    # ...and iterations 4-6 see the same samples as the uninterrupted run.
    assert _trained_keys(resumed_dir) == _trained_keys(straight_dir)[12:]
    assert 'Resumed the stream at its saved position' in output
    # Captions and crops are drawn from each sample's stream position, not from what a worker
    # processed before: the resumed run ends with bit-identical weights (same ops, CPU).
    expected = torch_load_weights_only(str(straight_dir / 'iter_6.pth'))['state_dict']
    actual = torch_load_weights_only(str(resumed_dir / 'iter_6.pth'))['state_dict']
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key


@pytest.mark.dist
def test_two_rank_wds_resume_restores_each_ranks_stream_position(shards, tmp_path):
    """2 processes (gloo), 1 worker each: StreamResumeHook gathers both ranks' positions into
    rank 0's checkpoint and hands each rank its own back, so after --resume every rank trains
    iterations 4-6 on exactly the samples of the uninterrupted 2-process run."""
    straight_dir, resumed_dir = tmp_path / 'straight', tmp_path / 'resumed'
    straight_dir.mkdir()
    resumed_dir.mkdir()
    output = train(write_config(straight_dir, shards, num_workers=1), straight_dir, nproc=2)
    assert 'Iter(train) [6/6]' in output and 'Distributed launcher pytorch, GPU number 2' in output
    state = torch_load_weights_only(str(straight_dir / 'iter_3.pth'))['stream_position']
    assert state['world_size'] == 2 and len(state['positions']) == 2
    # The two ranks read different shards: their saved positions differ.
    assert state['positions'][0] != state['positions'][1]

    output = train(
        write_config(resumed_dir, shards, num_workers=1),
        resumed_dir,
        '--resume',
        str(straight_dir / 'iter_3.pth'),
        nproc=2)
    assert 'Iter(train) [6/6]' in output
    # (MMEngine prints rank 0's log only; rank 1's resume shows in its files below.)
    assert 'Resumed the stream at its saved position (rank 0' in output, output[-3000:]
    for rank in (0, 1):
        straight = _trained_keys(straight_dir, rank)
        assert len(straight) == 24  # 6 iterations x batch 4
        assert (resumed_dir / f'batches_loaded_rank{rank}.txt').read_text() == '3'
        assert _trained_keys(resumed_dir, rank) == straight[12:], rank
    assert not set(_trained_keys(straight_dir, 0)) & set(_trained_keys(straight_dir, 1))
    expected = torch_load_weights_only(str(straight_dir / 'iter_6.pth'))['state_dict']
    actual = torch_load_weights_only(str(resumed_dir / 'iter_6.pth'))['state_dict']
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key


def _trained_keys(work_dir, rank=0):
    """``'<iteration> <sample key>'`` of every sample rank ``rank`` trained on, in order."""
    return [line.strip() for line in open(work_dir / f'trained_rank{rank}.txt')]
