"""Preemption (PreemptionHook): a signal mid-training saves one checkpoint, the run exits with
code 75, and --resume ends with the weights of an uninterrupted run; one process and two
(torchrun, gloo, DDP, the signal sent to one rank only)."""
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from mmengine.config import Config

from silc_seg.engine.checkpointing import PREEMPTED_EXIT_CODE, checkpoint_damage
from silc_seg.utils.checkpoint import torch_load_weights_only
from silc_seg.utils.demo_data import make_demo_data
from tests.launch import torchrun
from tests.test_engine.fault_helpers import (ENV, REPO, assert_same_weights, rank_pid, run,
                                             train_cmd, write_toy_config)

ITER_LOGGED = re.compile(r'Iter\(train\) \[\s*(\d+)/')


class Reader:
    """Collects a child's output on a thread, so that the test can wait for a line."""

    def __init__(self, process):
        self.lines = []
        self.thread = threading.Thread(target=self._read, args=(process.stdout, ), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for line in stream:
            self.lines.append(line)

    def wait_for_iter(self, process, iteration, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline and process.poll() is None:
            if any((m := ITER_LOGGED.search(line)) and int(m.group(1)) >= iteration
                   for line in list(self.lines)):
                return
            time.sleep(0.02)
        raise AssertionError('the run did not log iteration '
                             f'{iteration}:\n{"".join(self.lines)[-3000:]}')

    def text(self):
        self.thread.join(timeout=30)
        return ''.join(self.lines)


def start(cmd, **kwargs):
    return subprocess.Popen(
        cmd,
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs)


def preempted_checkpoint(work):
    """The checkpoint last_checkpoint names after a preemption, and its iteration."""
    path = Path((work / 'last_checkpoint').read_text())
    assert checkpoint_damage(str(path)) is None
    return path, int(re.fullmatch(r'iter_(\d+)\.pth', path.name).group(1))


@pytest.mark.slow
def test_sigusr1_to_the_process_group_saves_and_exits_with_the_preempted_code(straight, tmp_path):
    """One process with 2 dataloader workers, SIGUSR1 to its whole process group after iteration
    2 is logged: the workers survive it, the run finishes the step, saves iter_k and exits with
    75; --resume continues to the straight run's weights."""
    config = write_toy_config(
        tmp_path,
        'toy.py',
        checkpoint='max_keep_ckpts=-1',
        interval=100,
        custom_hooks="dict(type='StepDelayHook', seconds=0.3)",
        num_workers=2)
    work = tmp_path / 'work'
    child = start(train_cmd(config, work), start_new_session=True)
    reader = Reader(child)
    reader.wait_for_iter(child, 2)
    os.killpg(child.pid, signal.SIGUSR1)
    assert child.wait(timeout=120) == PREEMPTED_EXIT_CODE, reader.text()[-3000:]
    log = reader.text()
    assert 'Preemption: SIGUSR1 received' in log and 'exiting with code 75' in log
    assert 'DataLoader worker' not in log
    path, step = preempted_checkpoint(work)
    assert 2 <= step < 8 and sorted(work.glob('iter_*.pth')) == [path]

    resumed = run(train_cmd(config, work, '--resume', '--cfg-options', 'custom_hooks=[]'))
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert_same_weights(work / 'iter_8.pth', straight / 'iter_8.pth')


def write_demo_config(root, name):
    """configs/silc/``name`` on 48 small demo images under ``root``, 8 iterations of batch 2 per
    rank, a checkpoint only at the end, and a slowed step so that a signal lands mid-training."""
    make_demo_data(str(root), num_train=48, num_val=8, image_size=96, seed=0)
    cfg = Config.fromfile(str(REPO / 'configs' / 'silc' / name))
    cfg.custom_imports.imports = list(
        cfg.custom_imports.imports) + ['tests.test_engine.fault_helpers']
    cfg.train_dataloader.dataset.data_root = str(root)
    cfg.train_dataloader.batch_size = 2
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_cfg.max_iters = 8
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint.interval = 100
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.custom_hooks.append(dict(type='StepDelayHook', seconds=0.3))
    path = Path(root) / name.replace('.py', '_preempt.py')
    cfg.dump(str(path))
    return path


@pytest.fixture(scope='module')
def demo_config(tmp_path_factory):
    """demo_silc_tiny.py made short (write_demo_config)."""
    return write_demo_config(tmp_path_factory.mktemp('demo_preempt'), 'demo_silc_tiny.py')


@pytest.mark.slow
def test_sigusr1_to_a_masked_distillation_run_resumes_bit_identically(tmp_path):
    """demo_silc-maskdistill_tiny.py (SILC + masked self-distillation + MLM), one process:
    SIGUSR1 after iteration 2 is logged -> exit 75 with one iter_k.pth; --resume ends with the
    straight run's state dict bit for bit, the EMA teacher (image tower and masked head) and the
    masked loss's running centre included."""
    config = write_demo_config(tmp_path / 'data', 'demo_silc-maskdistill_tiny.py')
    straight = run(train_cmd(config, tmp_path / 'straight'), timeout=600)
    assert straight.returncode == 0, straight.stdout[-3000:] + straight.stderr[-3000:]

    work = tmp_path / 'work'
    child = start(train_cmd(config, work), start_new_session=True)
    reader = Reader(child)
    reader.wait_for_iter(child, 2)
    os.killpg(child.pid, signal.SIGUSR1)
    assert child.wait(timeout=300) == PREEMPTED_EXIT_CODE, reader.text()[-3000:]
    log = reader.text()
    assert 'Preemption: SIGUSR1 received' in log and 'exiting with code 75' in log
    path, step = preempted_checkpoint(work)
    assert 2 <= step < 8 and sorted(work.glob('iter_*.pth')) == [path]

    resumed = run(train_cmd(config, work, '--resume'), timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f'resumed epoch: 0, iter: {step}' in resumed.stdout + resumed.stderr
    keys = torch_load_weights_only(str(work / 'iter_8.pth'))['state_dict'].keys()
    assert 'masked_distill_loss.center' in keys and 'mask_step' in keys, sorted(keys)
    assert any(k.startswith('teacher_masked_head.') for k in keys), sorted(keys)
    assert_same_weights(work / 'iter_8.pth', tmp_path / 'straight' / 'iter_8.pth')


@pytest.mark.slow
def test_sigterm_to_one_rank_of_a_two_process_silc_run(demo_config, tmp_path):
    """torchrun, 2 CPU ranks (gloo, DDP), SILC demo: SIGTERM to rank 1 only after iteration 2 is
    logged; both ranks agree, one checkpoint is written, both exit with 75; --resume on 2 ranks
    ends bit-identical to a straight 2-rank run."""
    launch = [
        *torchrun(2),
        str(REPO / 'tools' / 'train.py'),
        str(demo_config), '--launcher', 'pytorch'
    ]
    straight = run([*launch, '--work-dir', str(tmp_path / 'straight')], timeout=600)
    assert straight.returncode == 0, straight.stdout[-3000:] + straight.stderr[-3000:]

    work = tmp_path / 'work'
    child = start([*launch, '--work-dir', str(work)])
    reader = Reader(child)
    rank1 = rank_pid(child.pid, rank=1)
    reader.wait_for_iter(child, 2)
    started = time.time()
    subprocess.run(['kill', '-TERM', str(rank1)], check=True)
    child.wait(timeout=300)
    stopped = time.time() - started
    log = reader.text()
    assert 'Preemption: SIGTERM received' in log, log[-3000:]
    assert re.search(rf'exitcode\s*:\s*{PREEMPTED_EXIT_CODE}', log), log[-3000:]
    path, step = preempted_checkpoint(work)
    assert 2 <= step < 8 and sorted(work.glob('iter_*.pth')) == [path]
    print(f'signal to exit: {stopped:.1f} s, checkpoint {path.name}')

    resumed = run([*launch, '--work-dir', str(work), '--resume'], timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert_same_weights(work / 'iter_8.pth', tmp_path / 'straight' / 'iter_8.pth')


@pytest.mark.slow
@pytest.mark.dist
def test_sigusr1_to_one_rank_of_a_two_process_fsdp_run(tmp_path):
    """torchrun, 2 CPU ranks, demo_silc_fsdp_tiny.py (FlexibleRunner + SILCFSDPStrategy, full
    checkpoint): SIGUSR1 to rank 0 only after iteration 2 is logged; both ranks finish the step,
    one consolidated checkpoint is written, both exit with 75; --resume on 2 ranks ends
    bit-identical to a straight 2-rank FSDP run (student, EMA teacher, centre)."""
    config = write_demo_config(tmp_path / 'data', 'demo_silc_fsdp_tiny.py')
    launch = [*torchrun(2), str(REPO / 'tools' / 'train.py'), str(config), '--launcher', 'pytorch']
    straight = run([*launch, '--work-dir', str(tmp_path / 'straight')], timeout=600)
    assert straight.returncode == 0, straight.stdout[-3000:] + straight.stderr[-3000:]

    work = tmp_path / 'work'
    child = start([*launch, '--work-dir', str(work)])
    reader = Reader(child)
    rank0 = rank_pid(child.pid, rank=0)
    reader.wait_for_iter(child, 2)
    subprocess.run(['kill', '-USR1', str(rank0)], check=True)
    child.wait(timeout=300)
    log = reader.text()
    assert 'Preemption: SIGUSR1 received' in log, log[-3000:]
    assert re.search(rf'exitcode\s*:\s*{PREEMPTED_EXIT_CODE}', log), log[-3000:]
    path, step = preempted_checkpoint(work)
    assert 2 <= step < 8 and sorted(work.glob('iter_*.pth')) == [path]

    resumed = run([*launch, '--work-dir', str(work), '--resume'], timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f'resumed epoch: 0, iter: {step}' in resumed.stdout + resumed.stderr
    assert_same_weights(work / 'iter_8.pth', tmp_path / 'straight' / 'iter_8.pth')


def test_slurm_script_requeues_on_the_preempted_code(tmp_path):
    """tools/slurm_train.sh with REQUEUE=1 (srun and scontrol replaced by recorders): exit code
    75 requeues the job, another code does not; a work dir with a last_checkpoint adds
    --resume."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text('#!/bin/sh\necho "$@" >> "$CALLS"\nexit "$SRUN_EXIT"\n')
    (bin_dir / 'scontrol').write_text('#!/bin/sh\necho "scontrol $@" >> "$CALLS"\n')
    for tool in ('srun', 'scontrol'):
        (bin_dir / tool).chmod(0o755)
    work = tmp_path / 'work'

    def slurm_train(exit_code, requeue='1'):
        calls = tmp_path / 'calls.txt'
        calls.write_text('')
        env = dict(
            ENV,
            PATH=f'{bin_dir}:{ENV["PATH"]}',
            CALLS=str(calls),
            REQUEUE=requeue,
            SRUN_EXIT=str(exit_code),
            SLURM_JOB_ID='4242')
        result = subprocess.run([
            'bash',
            str(REPO / 'tools' / 'slurm_train.sh'), 'part', 'job',
            'configs/silc/demo_silc_tiny.py', '--work-dir',
            str(work)
        ],
                                cwd=REPO,
                                env=env,
                                capture_output=True,
                                text=True,
                                timeout=60)
        return result.returncode, calls.read_text().splitlines()

    status, calls = slurm_train(PREEMPTED_EXIT_CODE)
    assert status == PREEMPTED_EXIT_CODE and calls[-1] == 'scontrol requeue 4242'
    assert '--resume' not in calls[0]  # nothing saved yet
    work.mkdir()
    (work / 'last_checkpoint').write_text(str(work / 'iter_2.pth'))
    status, calls = slurm_train(PREEMPTED_EXIT_CODE)
    assert calls[0].endswith(f'--work-dir {work} --resume') and len(calls) == 2
    status, calls = slurm_train(1)
    assert status == 1 and len(calls) == 1  # a failure is not requeued
    status, calls = slurm_train(PREEMPTED_EXIT_CODE, requeue='0')
    assert status == PREEMPTED_EXIT_CODE and len(calls) == 1 and '--resume' not in calls[0]
