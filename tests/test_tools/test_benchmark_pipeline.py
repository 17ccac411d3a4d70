"""tools/analysis_tools/benchmark_pipeline.py at toy size: both recipes make the same crops from
the same JPEGs, and the turn-taking timer reports every side."""
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from silc_seg.utils import import_file_as_module

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'tools' / 'analysis_tools' / 'benchmark_pipeline.py'


def _load_script():
    return import_file_as_module(str(SCRIPT), 'benchmark_pipeline')


def test_interleaved_round_times_every_side_on_every_image():
    bench = _load_script()
    seen = {'fast': [], 'slow': []}

    def side(name, cost):

        def fetch(i):
            seen[name].append(i)
            time.sleep(cost)

        return fetch

    rates = bench.interleaved_round(
        dict(fast=side('fast', 0.001), slow=side('slow', 0.004)), num=6, chunk=4, first=1)
    assert seen == {'fast': list(range(6)), 'slow': list(range(6))}
    assert rates['fast'] > 2 * rates['slow'] > 0


@pytest.mark.slow
def test_benchmark_pipeline_runs_and_compares(tmp_path):
    result = subprocess.run([
        sys.executable,
        str(SCRIPT), '--num-images', '4', '--rounds', '1', '--chunk', '2', '--data-dir',
        str(tmp_path)
    ],
                            cwd=ROOT,
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert len(list(tmp_path.glob('*.jpg'))) == 4
    for side in ('ours', 'dino', 'dino-uint8'):
        match = re.search(rf'^ *{side}: +([\d.]+) images/s', out, re.M)
        assert match and float(match.group(1)) > 0, out
    assert re.search(r'^ours / dino: [\d.]+x', out, re.M), out
    # The config packs 2 image-text views besides the 8 DINO crops: the DINO side makes them too
    # (the script asserts that both sides return the same crop shapes).
    assert '2x224 + 6x96 + 2x224 contrastive' in out, out
