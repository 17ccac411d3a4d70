"""What a user reads: tools print their result and a short run summary, not one init line per
parameter, the full config or third-party deprecation notices; the log file keeps the detail."""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest

from silc_seg.utils.demo_data import make_demo_data

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _env():
    return dict(
        os.environ,
        PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''),
        OMP_NUM_THREADS='1',
        PYTHONUNBUFFERED='1')


@pytest.mark.slow
def test_benchmark_step_prints_its_result_only():
    result = subprocess.run([
        sys.executable, 'tools/analysis_tools/benchmark_step.py', 'configs/silc/demo_silc_tiny.py',
        '--iters', '1', '--warmup', '0', '--batch-size', '2'
    ],
                            cwd=REPO,
                            env=_env(),
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    # Was 1,055 lines: one per parameter from init_weights, then the result.
    assert len(lines) < 15 and lines[0].startswith('config: configs/silc/demo_silc_tiny.py')
    assert 'Initialized by' not in result.stdout
    assert result.stderr == ''  # the two pkg_resources warnings of every command are gone


@pytest.mark.slow
def test_demo_training_terminal_is_a_summary_and_the_log_file_has_everything(tmp_path):
    data_root = tmp_path / 'demo'
    make_demo_data(str(data_root), num_train=8, num_val=2, image_size=96, seed=0)
    work_dir = tmp_path / 'work'
    result = subprocess.run([
        sys.executable, 'tools/train.py', 'configs/silc/demo_silc_tiny.py', '--work-dir',
        str(work_dir), '--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'train_cfg.max_iters=2',
        'val_dataloader=None', 'val_cfg=None', 'val_evaluator=None',
        'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=2'
    ],
                            cwd=REPO,
                            env=_env(),
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            text=True,
                            timeout=600)
    terminal = result.stdout
    assert result.returncode == 0, terminal[-5000:]
    lines = terminal.splitlines()
    first_iter = next(i for i, line in enumerate(lines) if 'Iter(train)' in line)
    assert first_iter <= 60, '\n'.join(lines[:first_iter])  # was 665 lines
    head = '\n'.join(lines[:first_iter])
    for summary in ('environment: Python', 'config: configs/silc/demo_silc_tiny.py',
                    f'work dir: {work_dir}', ' M parameters (', 'parameter groups: '):
        assert summary in head, head
    for noise in ('Hooks will be executed', 'paramwise_options --', 'FileClient',
                  'HardDiskBackend', 'pkg_resources', 'System environment:'):
        assert noise not in terminal, head
    assert sum('Iter(train)' in line for line in lines) == 2
    # The log file and the config dump keep the full detail.
    log_file, = glob.glob(str(work_dir / '*' / '*.log'))
    assert osp.basename(log_file)[:-4] in head  # the summary names the log file
    log = open(log_file).read()
    for detail in ('System environment:', 'Config:\n', 'Hooks will be executed in the '
                   'following order:', '(VERY_HIGH   ) RuntimeInfoHook', 'paramwise_options -- ',
                   'Iter(train) [2/2]'):
        assert detail in log
    dump = (work_dir / 'demo_silc_tiny.py').read_text()
    assert 'train_dataloader' in dump and 'max_iters=2' in dump
