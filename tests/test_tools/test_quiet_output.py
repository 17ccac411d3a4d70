"""What a user reads: tools print their result, not one init line per parameter, and no
pkg_resources deprecation warnings."""
import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_benchmark_step_prints_its_result_only():
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''),
               OMP_NUM_THREADS='1')
    result = subprocess.run(
        [sys.executable, 'tools/analysis_tools/benchmark_step.py',
         'configs/silc/demo_silc_tiny.py', '--iters', '1', '--warmup', '0', '--batch-size', '2'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    # Was 1,055 lines: one per parameter from init_weights, then the result.
    assert len(lines) < 15 and lines[0].startswith('config: configs/silc/demo_silc_tiny.py')
    assert 'Initialized by' not in result.stdout
    assert result.stderr == ''  # the two pkg_resources warnings of every command are gone
