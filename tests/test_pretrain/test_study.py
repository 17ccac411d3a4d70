"""tools/analysis_tools/silc_study.py: objective resolution, comparability check, summary."""
import json
import math
from pathlib import Path

import pytest

from silc_seg.utils import import_file_as_module

REPO = Path(__file__).resolve().parents[2]


def load_study():
    return import_file_as_module(
        str(REPO / 'tools' / 'analysis_tools' / 'silc_study.py'), 'silc_study')


@pytest.mark.slow
def test_objective_names_resolve_to_demo_configs(tmp_path):
    study = load_study()
    objectives = study.resolve_objectives(['clip', 'silc', 'distill'])
    assert objectives == {
        name: f'configs/silc/demo_{name}_tiny.py'
        for name in ('clip', 'silc', 'distill')
    }
    with pytest.raises(FileNotFoundError, match='nope'):
        study.resolve_objectives(['nope'])
    setup = study.check_comparable(objectives, [])
    assert setup['max_iters'] == 200 and setup['batch_size'] == 32
    # The setup (and when a run counts as trained) is what the runs see, overrides included.
    longer = study.check_comparable(objectives, ['train_cfg.max_iters=800'])
    assert longer['max_iters'] == 800
    assert not study._finished_training(
        str(tmp_path), objectives['clip'], ['train_cfg.max_iters=800'])
    (tmp_path / 'iter_200.pth').touch()
    assert study._finished_training(str(tmp_path), objectives['clip'], [])
    assert not study._finished_training(
        str(tmp_path), objectives['clip'], ['train_cfg.max_iters=800'])


@pytest.mark.slow
def test_refuses_objectives_with_other_schedules(tmp_path):
    study = load_study()
    config = tmp_path / 'longer.py'
    config.write_text(f"_base_ = ['{REPO}/configs/silc/demo_silc_tiny.py']\n"
                      'train_cfg = dict(max_iters=400)\n')
    objectives = study.resolve_objectives(['clip', f'longer={config}'])
    with pytest.raises(ValueError, match='max_iters'):
        study.check_comparable(objectives, [])


def test_summary_paired_differences_and_confidence_intervals(tmp_path):
    study = load_study()
    clip = [50.0, 52.0, 49.0, 51.0, 53.0]
    silc = [53.0, 52.5, 52.0, 55.0, 54.0]
    rows = [dict(objective='clip', seed=s, probe_mIoU=v) for s, v in enumerate(clip)]
    rows += [dict(objective='silc', seed=s, probe_mIoU=v) for s, v in enumerate(silc)]
    summary = study.write_outputs(rows, str(tmp_path), 'clip', dict(max_iters=1))
    # Written out: paired differences, sample sd, t(0.975, 4) = 2.7764451.
    diffs = [b - a for a, b in zip(clip, silc)]
    mean = sum(diffs) / 5
    sd = math.sqrt(sum((d - mean)**2 for d in diffs) / 4)
    half = 2.7764451 * sd / math.sqrt(5)
    assert f'{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}] n=5' in summary
    clip_sd = math.sqrt(sum((v - 51.0)**2 for v in clip) / 4)
    assert f'| clip | 5 | {51.0:.2f} ± {clip_sd:.2f} |' in summary
    runs = json.loads((tmp_path / 'runs.json').read_text())['runs']
    assert len(runs) == 10 and (tmp_path / 'runs.csv').read_text().count('\n') == 11
