"""tools/analysis_tools/zero_shot_table.py on generated dataset layouts with tiny towers: the
cells agree with tools/test.py, a missing benchmark is one clear cell, a failing cell is recorded
and the run goes on, finished cells are skipped on a rerun, the manifests hold the hashes."""
import csv
import hashlib
import json
import os
import os.path as osp
import runpy
import subprocess
import sys

import pytest
import torch

from silc_seg.models.utils import get_prompt_templates, load_class_names
from silc_seg.utils import import_file_as_module
from ..launch import torchrun
from .test_presets import REPO, TINY_TOWERS, preset_path
from .tiny_datasets import make_benchmark_layout, save_random_checkpoint

PATH = osp.join(REPO, 'tools/analysis_tools/zero_shot_table.py')
TINY_OPTIONS = [
    'model.image_encoder.width=32', 'model.image_encoder.depth=2',
    'model.image_encoder.num_heads=2', 'model.image_encoder.output_dim=16',
    'model.text_encoder.width=32', 'model.text_encoder.depth=1', 'model.text_encoder.num_heads=2',
    'model.text_encoder.output_dim=16', 'model.templates=single', 'test_dataloader.num_workers=0'
]


def load_tool():
    return import_file_as_module(PATH, 'zero_shot_table')


@pytest.fixture(scope='module')
def tiny_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('table')
    checkpoint = save_random_checkpoint(
        preset_path('sclip', 'voc20'), TINY_TOWERS, root / 'tiny_clip.pth')
    roots = {}
    for dataset in ('voc20', 'pc59'):
        roots[dataset] = str(root / 'data' / dataset)
        make_benchmark_layout(dataset, roots[dataset])
    roots['ade150'] = str(root / 'data' / 'absent')
    return root, checkpoint, roots


def table_argv(checkpoint, work_dir, roots, *extra):
    return [
        checkpoint, '--methods', 'sclip', 'clearclip', '--datasets', 'voc20', 'pc59', 'ade150',
        '--work-dir',
        str(work_dir), '--data-root', *[f'{name}={root}' for name, root in roots.items()],
        '--cfg-options', *TINY_OPTIONS, *extra
    ]


def published_in_docs(preset):
    """The last column of the preset's row in docs/zero_shot_protocols.md, read here."""
    with open(osp.join(REPO, 'docs/zero_shot_protocols.md'), encoding='utf-8') as f:
        for line in f:
            if line.startswith(f'| `{preset}` |'):
                return [cell.strip() for cell in line.strip().strip('|').split('|')][-1]
    raise AssertionError(preset)


def tools_test_miou(config, checkpoint, work_dir, monkeypatch):
    monkeypatch.setattr(sys, 'argv', [
        'tools/test.py', config, checkpoint, '--work-dir',
        str(work_dir), '--cfg-options', *TINY_OPTIONS
    ])
    runpy.run_path(osp.join(REPO, 'tools/test.py'), run_name='__main__')
    text = next(work_dir.rglob('*.log')).read_text()
    return float(text.rsplit('mIoU: ', 1)[1].split()[0])


@pytest.mark.slow
def test_table_cells_missing_failed_and_resume(tiny_setup, tmp_path, monkeypatch, capsys):
    root, checkpoint, roots = tiny_setup
    tool = load_tool()
    work_dir = tmp_path / 'table'
    real_run_cell = tool.run_cell

    def failing_on_pc59_clearclip(cfg, args):
        if 'clearclip_vit-b16_pc59' in cfg.work_dir:
            raise RuntimeError('out of memory in window 3\nsecond line')
        return real_run_cell(cfg, args)

    monkeypatch.setattr(tool, 'run_cell', failing_on_pc59_clearclip)
    rows = tool.main(table_argv(checkpoint, work_dir, roots))
    by_cell = {(row['method'], row['dataset']): row for row in rows}
    assert len(rows) == 6
    for method in ('sclip', 'clearclip'):
        missing = by_cell[(method, 'ade150')]
        assert missing['status'] == 'missing'
        assert missing['note'] == f"missing: {roots['ade150']} not found"
    failed = by_cell[('clearclip', 'pc59')]
    assert failed['status'] == 'failed'
    assert failed['note'] == 'failed: RuntimeError: out of memory in window 3'
    done = [key for key, row in by_cell.items() if row['status'] == 'done']
    assert sorted(done) == [('clearclip', 'voc20'), ('sclip', 'pc59'), ('sclip', 'voc20')]

    # Each cell is what tools/test.py reports for the same preset, data and weights.
    config = tmp_path / 'sclip_pc59.py'
    config.write_text(f"_base_ = ['{preset_path('sclip', 'pc59')}']\n"
                      f"test_dataloader = dict(dataset=dict(data_root='{roots['pc59']}'))\n")
    expected = tools_test_miou(str(config), checkpoint, tmp_path / 'tools_test', monkeypatch)
    assert by_cell[('sclip', 'pc59')]['mIoU'] == pytest.approx(expected, abs=0.006)

    # Manifests: the hashes recomputed here from the files.
    with open(checkpoint, 'rb') as f:
        checkpoint_sha256 = hashlib.sha256(f.read()).hexdigest()
    manifest = json.loads((work_dir / 'cells/sclip_vit-b16_pc59/manifest.json').read_text())
    vocabulary = load_class_names(osp.join(REPO, 'configs/vocabularies/sclip/cls_context59.txt'))
    assert manifest['status'] == 'done' and manifest['checkpoint_sha256'] == checkpoint_sha256
    assert manifest['vocabulary_sha256'] == hashlib.sha256(
        json.dumps(vocabulary, sort_keys=True).encode()).hexdigest()
    assert manifest['templates_sha256'] == hashlib.sha256(
        json.dumps(get_prompt_templates('single')).encode()).hexdigest()
    assert manifest['metrics']['mIoU'] == by_cell[('sclip', 'pc59')]['mIoU']
    assert set(manifest['versions']) == {'torch', 'mmengine', 'mmseg', 'mmcv', 'silc_seg'}
    assert manifest['versions']['torch'] == torch.__version__
    assert len(manifest['config_sha256']) == 64 and manifest['git_commit']
    failed_manifest = json.loads(
        (work_dir / 'cells/clearclip_vit-b16_pc59/manifest.json').read_text())
    assert failed_manifest['status'] == 'failed'
    assert 'second line' in (work_dir / 'cells/clearclip_vit-b16_pc59/error.txt').read_text()

    # Tables: one row per cell, the published number of the docs beside it.
    with open(work_dir / 'zero_shot_table.csv', newline='') as f:
        table = list(csv.DictReader(f))
    assert [(row['method'], row['dataset']) for row in table] == list(by_cell)
    for row in table:
        assert row['published'] == published_in_docs(f"{row['method']}_vit-b16_{row['dataset']}")
    sclip_voc20 = table[0]
    assert sclip_voc20['published'] == '81.54 (a)' and sclip_voc20['published_mIoU'] == '81.54'
    assert float(sclip_voc20['mIoU']) == pytest.approx(
        by_cell[('sclip', 'voc20')]['mIoU'], abs=0.006)
    markdown = (work_dir / 'zero_shot_table.md').read_text()
    assert f"| sclip | ade150 |  | 16.45 (a); paper 16.1 (b) | missing: {roots['ade150']} " \
           'not found |' in markdown
    assert markdown in capsys.readouterr().out

    # Rerun: finished cells are skipped (no runner), the failed one runs again; a manifest
    # from other weights does not count as finished.
    ran = []
    monkeypatch.setattr(tool, 'run_cell',
                        lambda cfg, args: ran.append(cfg.work_dir) or (real_run_cell(cfg, args)))
    stale = work_dir / 'cells/sclip_vit-b16_voc20/manifest.json'
    stale.write_text(stale.read_text().replace(checkpoint_sha256, '0' * 64))
    rows = tool.main(table_argv(checkpoint, work_dir, roots))
    assert sorted(osp.basename(path)
                  for path in ran) == ['clearclip_vit-b16_pc59', 'sclip_vit-b16_voc20']
    notes = {(row['method'], row['dataset']): row['note'] for row in rows}
    assert notes[('sclip', 'pc59')] == notes[('clearclip', 'voc20')] == 'skipped: finished'
    assert all(row['status'] in ('done', 'missing') for row in rows)
    # A changed setting changes the config hash: the cell runs again.
    ran.clear()
    tool.main([
        checkpoint, '--methods', 'sclip', '--datasets', 'pc59', '--work-dir',
        str(work_dir), '--data-root', f"pc59={roots['pc59']}", '--cfg-options', *TINY_OPTIONS,
        'model.decode_head.logit_scale=30.0'
    ])
    assert [osp.basename(path) for path in ran] == ['sclip_vit-b16_pc59']


def test_published_numbers_and_arguments():
    tool = load_tool()
    numbers = tool.published_numbers()
    assert len(numbers) == 64  # 8 methods x 8 benchmarks
    assert numbers['naclip_vit-b16_ade150'] == published_in_docs('naclip_vit-b16_ade150')
    assert tool.first_number(numbers['naclip_vit-b16_ade150']) == 19.05
    assert tool.first_number(numbers['scclip_vit-b16_voc20']) is None  # '(g)': none published
    with pytest.raises(SystemExit):
        tool.parse_args(['ckpt.pth', '--data-root', 'ade20k=/data'])
    with pytest.raises(SystemExit):
        tool.parse_args(['ckpt.pth', '--methods', 'nomethod'])


def run_table(prefix, checkpoint, work_dir, roots):
    """The tool as a user starts it (``prefix``: torchrun for several ranks), one thread per
    process on both sides; returns the console output."""
    launcher = ['--launcher', 'pytorch'] if prefix else []
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    result = subprocess.run(
        [*(prefix or [sys.executable]), PATH, *table_argv(checkpoint, work_dir, roots), *launcher],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result.stdout


def read_cells(work_dir):
    with open(work_dir / 'zero_shot_table.csv', newline='') as f:
        table = [(row['method'], row['dataset'], row['status'], row['mIoU'])
                 for row in csv.DictReader(f)]
    manifests = {
        path.parent.name: json.loads(path.read_text())
        for path in sorted(work_dir.glob('cells/*/manifest.json'))
    }
    return table, manifests


def runner_dirs(work_dir):
    return sorted(str(path) for path in work_dir.glob('cells/*/*') if path.is_dir())


@pytest.mark.slow
@pytest.mark.dist
def test_two_ranks_give_the_one_rank_table_and_skip_finished_cells(tmp_path_factory):
    """torchrun with 2 CPU processes (gloo), 3 images per benchmark (one rank gets a padded
    duplicate): the same cells, statuses and metrics as one process, manifests written once
    (by rank 0); a second 2-rank run skips every finished cell without building a runner."""
    root = tmp_path_factory.mktemp('dist_table')
    checkpoint = save_random_checkpoint(
        preset_path('sclip', 'voc20'), TINY_TOWERS, root / 'tiny_clip.pth', seed=1)
    roots = {'ade150': str(root / 'data' / 'absent')}
    for seed, dataset in enumerate(('voc20', 'pc59')):
        roots[dataset] = str(root / 'data' / dataset)
        make_benchmark_layout(dataset, roots[dataset], seed=seed, num_images=3)

    run_table(None, checkpoint, root / 'one', roots)
    output = run_table(torchrun(2), checkpoint, root / 'two', roots)
    one_table, one_manifests = read_cells(root / 'one')
    two_table, two_manifests = read_cells(root / 'two')
    assert two_table == one_table
    assert [row[2] for row in one_table] == ['done', 'done', 'missing'] * 2
    assert sorted(two_manifests) == sorted(one_manifests) and len(one_manifests) == 4
    for name, manifest in two_manifests.items():
        reference = one_manifests[name]
        assert manifest['status'] == reference['status'] == 'done'
        assert manifest['launcher'] == 'pytorch' and reference['launcher'] == 'none'
        assert manifest['config_sha256'] == reference['config_sha256']
        assert manifest['checkpoint_sha256'] == reference['checkpoint_sha256']
        assert set(manifest['metrics']) == set(reference['metrics'])
        for key, value in reference['metrics'].items():
            assert manifest['metrics'][key] == pytest.approx(value, abs=1e-9), (name, key)
    # One console table (rank 0's), each cell's progress line once.
    assert output.count('| method | dataset | mIoU |') == 1
    assert output.count('sclip voc20: done') == 1

    # Rerun on 2 ranks: the finished cells are skipped (manifests untouched, no new runner
    # work dir), the absent benchmark is reported again.
    before = {path: path.read_bytes() for path in (root / 'two').glob('cells/*/manifest.json')}
    runs_before = runner_dirs(root / 'two')
    output = run_table(torchrun(2), checkpoint, root / 'two', roots)
    assert output.count('skipped: finished') == 4 + 4  # progress lines and table rows
    assert {path: path.read_bytes() for path in before} == before
    assert runner_dirs(root / 'two') == runs_before
    again, _ = read_cells(root / 'two')
    assert again == one_table
