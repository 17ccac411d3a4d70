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


@pytest.mark.slow
def test_main_only_batch_has_the_crop_pipeline_layout_and_is_timed(tmp_path):
    """``--main-only`` (the GPU kit, no OpenCV) times the augmentation on synthetic crops laid out
    exactly as a collated batch of the config's crop-only pipeline."""
    from mmengine.config import Config
    from mmengine.dataset import default_collate
    from mmengine.registry import init_default_scope

    from silc_seg.registry import DATASETS
    bench = _load_script()
    cfg = Config.fromfile(ROOT / 'configs/_base_/datasets/wds_pretrain_224.py')
    init_default_scope('mmseg')
    bench.make_jpegs(tmp_path, 2, 0)
    dataset = DATASETS.build(
        dict(
            type='ImageTextManifestDataset',
            data_root=str(tmp_path),
            ann_file='manifest.jsonl',
            pipeline=cfg.train_pipeline))
    real = default_collate([dataset[0], dataset[1]])['inputs']
    synthetic = bench.synthetic_batch(cfg, 2)['inputs']
    assert set(synthetic) == set(real)
    for key, value in real.items():
        views = value if isinstance(value, list) else [value]
        fake = synthetic[key] if isinstance(value, list) else [synthetic[key]]
        assert [(v.shape, v.dtype) for v in fake] == [(v.shape, v.dtype) for v in views], key
    result = subprocess.run(
        [sys.executable,
         str(SCRIPT), '--main-only', '--rounds', '1', '--batch-size', '2'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(r'augmentation (-?[\d.]+) ms per image \(preprocessor with it ([\d.]+) ms',
                      result.stdout)
    assert match and float(match.group(2)) > 0, result.stdout
