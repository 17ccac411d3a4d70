"""tools/analysis_tools/benchmark_fsdp_step.py on 2 gloo processes: the FSDP strategy of the
config wraps the model, every step runs, and the reported throughput is the analytical FLOPs of
the step over its measured time."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from silc_seg.registry import MODELS
from silc_seg.utils import import_file_as_module
from tests.launch import torchrun

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'tools' / 'analysis_tools' / 'benchmark_fsdp_step.py'
CONFIG = 'configs/silc/demo_silc_fsdp_tiny.py'


@pytest.mark.slow
def test_a_config_without_strategy_stops_with_the_recipe_to_use():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), 'configs/silc/demo_silc_tiny.py'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120)
    assert result.returncode == 1
    assert 'has no strategy' in result.stderr and 'pretrain_silc_vit-b16_fsdp.py' in result.stderr


@pytest.mark.slow
@pytest.mark.dist
def test_two_process_fsdp_step_reports_time_and_flops(tmp_path):
    out = tmp_path / 'fsdp.json'
    result = subprocess.run([
        *torchrun(2),
        str(SCRIPT), CONFIG, '--batch-size', '4', '--iters', '2', '--warmup', '1', '--json',
        str(out), '--peak-tflops', '0.01'
    ],
                            cwd=ROOT,
                            capture_output=True,
                            text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures['world_size'] == 2 and figures['batch_per_rank'] == 4
    assert len(figures['losses']) == 3 and len(figures['step_times_s']) == 2
    assert all(loss == loss and 0 < loss < 100 for loss in figures['losses'])
    assert 'step_ms: ' in result.stdout and 'mfu: ' in result.stdout
    # Throughput = the step's analytical FLOPs (2 x 64 px + 6 x 32 px crops, 4 pairs) / time.
    cfg = Config.fromfile(ROOT / CONFIG)
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    step_tools = import_file_as_module(
        str(ROOT / 'tools/analysis_tools/benchmark_step.py'), 'benchmark_step')
    flops = step_tools.step_flops(model, 64, 32, 2, 6)[2] * 4
    seconds = figures['step_ms'] / 1e3
    assert figures['tflops_per_rank'] == pytest.approx(flops / seconds / 1e12, rel=1e-6)
    assert figures['mfu'] == pytest.approx(figures['tflops_per_rank'] / 0.01, rel=1e-6)
    assert figures['pairs_per_s'] == pytest.approx(2 * 4 / seconds, rel=1e-6)
