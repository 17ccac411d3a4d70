"""FSDP through MMEngine (FlexibleRunner + FSDPStrategy, 2 gloo processes on CPU) against the
DDP run of the same demo: same losses and weights (student, EMA teacher, distillation centre)
within fp32 tolerance, the EMA equation on the consolidated weights, bit-identical resume with
full and with sharded checkpoints, a save killed mid-write, the consolidated checkpoint loaded
by ``load_model_checkpoint``, a run with activation checkpointing, and the masked branch."""
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from silc_seg.engine.checkpointing import checkpoint_damage
from silc_seg.registry import MODELS
from silc_seg.utils import load_model_checkpoint
from tests.launch import torchrun
from tests.test_engine.fault_helpers import ENV, rank_pid
from tests.test_pretrain.test_demo_pretrain import demo_root  # noqa: F401  (a fixture)
from tests.test_pretrain.test_demo_pretrain import load_state, run, small_run_options

pytestmark = [pytest.mark.dist, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DDP_CONFIG = 'configs/silc/demo_silc_tiny.py'
FSDP_CONFIG = 'configs/silc/demo_silc_fsdp_tiny.py'
MAX_ITERS = 4
MOMENTUM = 0.99  # demo_silc_tiny.py: teacher=dict(momentum=0.99), fixed


def train2(config, work_dir, options, *extra):
    """``torchrun --nproc_per_node 2 tools/train.py CONFIG --launcher pytorch``."""
    return run([
        *torchrun(2), 'tools/train.py', config, '--work-dir',
        str(work_dir), '--launcher', 'pytorch', *extra, '--cfg-options', *options
    ])


def losses(work_dir):
    """``{step: {loss name: value}}`` of rank 0's scalar log."""
    (path, ) = work_dir.glob('*/vis_data/scalars.json')
    out = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if 'loss' in record:
            out[record['step']] = {k: v for k, v in record.items() if k.startswith('loss')}
    return out


def initial_weights(config, path):
    """One random initialization for both runs (``load_from``): the runners draw the model's
    weights at different points of the seeded random stream."""
    cfg = Config.fromfile(str(REPO / config))
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict()), path)
    return f'load_from={path}'


@pytest.fixture(scope='module')
def runs(demo_root, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp('fsdp')
    options = small_run_options(demo_root, max_iters=MAX_ITERS, batch_size=2)
    options.append(initial_weights(DDP_CONFIG, root / 'init.pth'))
    train2(DDP_CONFIG, root / 'ddp', options)
    train2(FSDP_CONFIG, root / 'fsdp', options)
    return root, options


def test_fsdp_matches_ddp(runs):
    """Same seed, same data, 4 iterations: FSDP's losses and updated weights are DDP's."""
    root, _ = runs
    ddp_losses, fsdp_losses = losses(root / 'ddp'), losses(root / 'fsdp')
    assert sorted(fsdp_losses) == list(range(1, MAX_ITERS + 1))
    for step, expected in ddp_losses.items():
        assert set(fsdp_losses[step]) == set(expected) and 'loss_distill' in expected
        for name, value in expected.items():
            close = pytest.approx(value, rel=1e-5, abs=1e-6)
            assert fsdp_losses[step][name] == close, (step, name)
    for step in (2, MAX_ITERS):
        ddp = load_state(root / 'ddp' / f'iter_{step}.pth')
        fsdp = load_state(root / 'fsdp' / f'iter_{step}.pth')
        # The consolidated (full) state dict has the DDP run's keys, wrapper-free.
        assert fsdp.keys() == ddp.keys()
        assert 'distill_loss.center' in fsdp
        for key in ddp:
            torch.testing.assert_close(fsdp[key], ddp[key], rtol=1e-4, atol=1e-5, msg=key)
    first = load_state(root / 'fsdp' / 'iter_2.pth')
    assert any(not torch.equal(first[k], fsdp[k]) for k in fsdp if k.startswith('teacher_'))


def test_fsdp_teacher_is_the_ema_of_the_student(runs):
    """On the consolidated weights of iterations 3 and 4 (sharded update, gathered on save):
    ``teacher_4 = m * teacher_3 + (1 - m) * student_4`` for every teacher parameter."""
    root, options = runs
    before = load_state(root / 'fsdp' / 'iter_2.pth')
    work = root / 'fsdp_every'
    work.mkdir()
    shutil.copy(root / 'fsdp' / 'iter_2.pth', work / 'iter_2.pth')
    train2(FSDP_CONFIG, work, options + ['default_hooks.checkpoint.interval=1'], '--resume',
           str(work / 'iter_2.pth'))
    prev, last = load_state(work / 'iter_3.pth'), load_state(work / 'iter_4.pth')
    checked = 0
    for key, teacher in last.items():
        for prefix, student in (('teacher_image_encoder.', 'image_encoder.'), ('teacher_head.',
                                                                               'distill_head.')):
            if key.startswith(prefix) and teacher.is_floating_point():
                expected = MOMENTUM * prev[key] + (1 - MOMENTUM) * last[student +
                                                                        key[len(prefix):]]
                torch.testing.assert_close(teacher, expected, rtol=1e-5, atol=1e-7, msg=key)
                checked += 1
    assert checked > 20
    # The teacher moved (the check above is not about a frozen teacher).
    assert not torch.equal(before['teacher_image_encoder.pos_embed'],
                           last['teacher_image_encoder.pos_embed'])


def test_fsdp_resume_gives_identical_weights(runs):
    """Resume identity with the consolidated checkpoint: the run resumed at iteration 2 (by
    the test above) ends with the straight run's weights."""
    root, _ = runs
    last = load_state(root / 'fsdp_every' / f'iter_{MAX_ITERS}.pth')
    straight = load_state(root / 'fsdp' / f'iter_{MAX_ITERS}.pth')
    for key in straight:
        assert torch.equal(straight[key], last[key]), key


def test_fsdp_full_checkpoint_loads_into_plain_model(runs):
    """The consolidated FSDP checkpoint loads, strictly, into the unwrapped model."""
    root, _ = runs
    cfg = Config.fromfile(FSDP_CONFIG)
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    load_model_checkpoint(model, str(root / 'fsdp' / f'iter_{MAX_ITERS}.pth'))
    state = load_state(root / 'fsdp' / f'iter_{MAX_ITERS}.pth')
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_fsdp_sharded_checkpoint_resume_and_activation_checkpointing(runs):
    """``state_dict_cfg='local'``: one shard file per rank, plain tensors only (read here
    weights-only); resuming from iteration 2's shards gives bit-identical shards at iteration 4.
    The run checkpoints the blocks' activations (``silc_checkpoint_fn``)."""
    root, options = runs
    # load_from of a sharded run reads a folder of shards: start from the seeded init instead.
    options = [option for option in options if not option.startswith('load_from=')]
    local = options + [
        'strategy.state_dict_cfg=local',
        '+strategy.activation_checkpointing.check_fn=silc_checkpoint_fn'
    ]
    straight, resumed = root / 'local', root / 'local_resumed'
    train2(FSDP_CONFIG, straight, local)
    shards = sorted(path.name for path in (straight / 'iter_2.pth').iterdir())
    assert shards == ['rank0.pth', 'rank1.pth']
    resumed.mkdir()
    shutil.copytree(straight / 'iter_2.pth', resumed / 'iter_2.pth')
    train2(FSDP_CONFIG, resumed, local, '--resume', str(resumed / 'iter_2.pth'))
    for rank in (0, 1):
        expected = load_state(straight / f'iter_{MAX_ITERS}.pth' / f'rank{rank}.pth')
        actual = load_state(resumed / f'iter_{MAX_ITERS}.pth' / f'rank{rank}.pth')
        assert expected.keys() == actual.keys()
        for key in expected:
            assert torch.equal(expected[key], actual[key]), (rank, key)
    assert sorted(losses(straight)) == list(range(1, MAX_ITERS + 1))


HANGING_SAVE = '''
_base_ = ['{repo}/configs/silc/demo_silc_fsdp_tiny.py']
custom_imports = dict(imports=['silc_seg', 'tests.test_engine.fault_helpers'],
                      allow_failed_imports=False)
custom_hooks = [{{{{_base_.freeze_last_layer_hook}}}}, {{{{_base_.data_stats_hook}}}},
                dict(type='HangingSaveHook', name='iter_{step}.pth', marker='{marker}')]
'''


def test_fsdp_save_killed_mid_write_leaves_the_previous_checkpoint(runs, tmp_path):
    """The consolidated save of iteration 4 stops after its bytes are in the temporary file
    (HangingSaveHook) and the writing rank is killed (SIGKILL): iter_2.pth and last_checkpoint
    are as they were, no iter_4.pth exists; --resume (auto) continues from iteration 2, removes
    the temporary file and ends with the straight run's weights."""
    root, options = runs
    marker = tmp_path / 'hanging'
    config = tmp_path / 'hanging_save.py'
    config.write_text(HANGING_SAVE.format(repo=REPO, step=MAX_ITERS, marker=marker))
    work = tmp_path / 'work'
    with open(tmp_path / 'log.txt', 'w') as log:
        child = subprocess.Popen([
            *torchrun(2), 'tools/train.py',
            str(config), '--work-dir',
            str(work), '--launcher', 'pytorch', '--cfg-options', *options
        ],
                                 cwd=REPO,
                                 env=ENV,
                                 stdout=log,
                                 stderr=subprocess.STDOUT)
        writer = rank_pid(child.pid, rank=0)
        deadline = time.time() + 300
        while not marker.exists() and child.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert marker.exists(), (tmp_path / 'log.txt').read_text()[-3000:]
        os.kill(writer, signal.SIGKILL)
        assert child.wait(timeout=120) != 0
    temp, size = marker.read_text().split()
    assert Path(temp).parent == work and int(size) > 0
    assert not (work / f'iter_{MAX_ITERS}.pth').exists() and Path(temp).exists()
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')
    assert checkpoint_damage(str(work / 'iter_2.pth')) is None

    train2(FSDP_CONFIG, work, options, '--resume')
    assert not Path(temp).exists()
    last = load_state(work / f'iter_{MAX_ITERS}.pth')
    straight = load_state(root / 'fsdp' / f'iter_{MAX_ITERS}.pth')
    assert last.keys() == straight.keys()
    for key in straight:
        assert torch.equal(straight[key], last[key]), key


MASKED_FSDP = '''
_base_ = ['{repo}/configs/silc/demo_silc-maskdistill_tiny.py']
runner_type = 'FlexibleRunner'
strategy = dict(
    type='SILCFSDPStrategy',
    model_wrapper=dict(type='mmseg.TrainStepFSDP',
                       auto_wrap_policy=dict(type='silc_fsdp_wrap_policy')),
    state_dict_cfg='full')
model_wrapper_cfg = None
custom_hooks = [{{{{_base_.freeze_last_layer_hook}}}}, {{{{_base_.data_stats_hook}}}}]
'''


def test_fsdp_masked_branch_matches_ddp(demo_root, tmp_path):  # noqa: F811
    """SILC + masked self-distillation (second teacher head, patch centre, masked language
    modelling) sharded: the losses and weights of the DDP run of the same config."""
    config = tmp_path / 'masked_fsdp.py'
    config.write_text(MASKED_FSDP.format(repo=REPO))
    options = small_run_options(demo_root, max_iters=2, batch_size=2)
    options.append(
        initial_weights('configs/silc/demo_silc-maskdistill_tiny.py', tmp_path / 'init.pth'))
    train2('configs/silc/demo_silc-maskdistill_tiny.py', tmp_path / 'ddp', options)
    train2(str(config), tmp_path / 'fsdp', options)
    ddp_losses, fsdp_losses = losses(tmp_path / 'ddp'), losses(tmp_path / 'fsdp')
    assert 'loss_mask_distill' in ddp_losses[2] and 'loss_mlm' in ddp_losses[2]
    for step, expected in ddp_losses.items():
        for name, value in expected.items():
            close = pytest.approx(value, rel=1e-5, abs=1e-6)
            assert fsdp_losses[step][name] == close, (step, name)
    ddp = load_state(tmp_path / 'ddp' / 'iter_2.pth')
    fsdp = load_state(tmp_path / 'fsdp' / 'iter_2.pth')
    assert fsdp.keys() == ddp.keys() and 'masked_distill_loss.center' in fsdp
    for key in ddp:
        torch.testing.assert_close(fsdp[key], ddp[key], rtol=1e-4, atol=1e-5, msg=key)
