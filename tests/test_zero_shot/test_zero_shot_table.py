"""tools/analysis_tools/zero_shot_table.py on generated dataset layouts with tiny towers: the
cells agree with tools/test.py, a missing benchmark is one clear cell, a failing cell is recorded
and the run goes on, finished cells are skipped on a rerun, the manifests hold the hashes."""
import csv
import hashlib
import json
import os.path as osp
import runpy
import sys

import pytest
import torch

from silc_seg.models.utils import get_prompt_templates, load_class_names
from silc_seg.utils import import_file_as_module
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
