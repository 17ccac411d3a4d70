"""tools/analysis_tools/benchmark_catseg.py (the GPU benchmark entry point) runs end to end on
CPU with the tiny CAT-Seg config and reports what it promises."""
import json
import os.path as osp

import pytest

from silc_seg.utils import import_file_as_module

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.slow
def test_benchmark_reports_training_and_test_figures(tmp_path, single_thread):
    module = import_file_as_module(
        osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_catseg.py'), 'benchmark_catseg')
    out = tmp_path / 'result.json'
    result = module.main([
        osp.join(REPO, 'configs', 'silc',
                 'catseg_tiny_coco-stuff171.py'), '--device', 'cpu', '--batch-size', '2',
        '--warmup', '1', '--iters', '2', '--test-images', '1', '--test-size', '48', '64', '--out',
        str(out)
    ])
    assert json.loads(out.read_text()) == result
    assert result['train_batch'] == 2 and result['train_crop'] == [64, 64]
    assert result['train_classes'] == 171 and result['test_classes'] == 150
    assert result['dense_variant'] == 'catseg' and result['test_mode'] == 'slide'
    assert result['train_iter_s_median'] > 0 and result['test_images_per_s'] > 0
    assert result['train_peak_mib'] > 0
