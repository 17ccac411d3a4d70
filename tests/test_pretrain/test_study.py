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


def test_probe_blocks_resolve_to_block_numbers():
    study = load_study()
    assert study.resolve_probe_blocks(['last', 'mid'], 4) == [2, 4]
    assert study.resolve_probe_blocks(['mid'], 12) == [6]
    assert study.resolve_probe_blocks(['1', 'last', '4'], 4) == [1, 4]
    assert study.probe_key(4, 4) == 'probe_mIoU' and study.probe_key(2, 4) == 'probe_mIoU_block2'
    with pytest.raises(ValueError, match='outside'):
        study.resolve_probe_blocks(['5'], 4)
    with pytest.raises(ValueError, match='mid'):
        study.resolve_probe_blocks(['middle'], 4)


@pytest.mark.slow
def test_probe_encoder_returns_the_tokens_after_that_block():
    import torch

    import silc_seg  # noqa: F401
    from silc_seg.registry import MODELS
    study = load_study()
    cfg = dict(
        type='SILCVisionTransformer',
        img_size=32,
        patch_size=8,
        width=32,
        depth=4,
        num_heads=2,
        output_dim=16)
    torch.manual_seed(0)
    reference = MODELS.build(cfg).eval()  # random weights
    state = {f'image_encoder.{k}': v for k, v in reference.state_dict().items()}
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        tokens, _ = reference.embed(images)
        after = []
        for block in reference.blocks:
            tokens = block(tokens)
            after.append(tokens[:, reference.num_prefix_tokens:])

        def as_map(x):  # (B, 16, C) -> (B, C, 4, 4), row-major patches
            return x.transpose(1, 2).reshape(2, 32, 4, 4)

        for block in (1, 2, 3):
            out = study.probe_encoder(cfg, state, block).eval()(images)
            torch.testing.assert_close(out[-1], as_map(after[block - 1]))
        last = study.probe_encoder(cfg, state, 4).eval()(images)[-1]
        expected = reference.ln_post(tokens)[:, reference.num_prefix_tokens:]
        torch.testing.assert_close(last, as_map(expected))


def test_summary_has_a_column_per_probed_block(tmp_path):
    study = load_study()
    rows = [
        dict(objective=name, seed=s, probe_mIoU=50.0 + s + k, probe_mIoU_block2=40.0 + 2 * s + k)
        for k, name in enumerate(('siglip', 'siglip2')) for s in range(3)
    ]
    summary = study.write_outputs(rows, str(tmp_path), 'siglip', dict(max_iters=1))
    header = next(line for line in summary.splitlines() if line.startswith('| objective'))
    assert header.startswith('| objective | n | linear probe mIoU | linear probe mIoU block 2 |')
    # Paired differences of the block-2 probe: +1 on every seed (sd 0).
    assert '| siglip2 - siglip | +1.00 [+1.00, +1.00] n=3 | +1.00 [+1.00, +1.00] n=3 |' in summary
