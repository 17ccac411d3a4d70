"""The zero-shot table of one checkpoint: every method preset x benchmark, with the published
mIoU beside each cell.

    python tools/analysis_tools/zero_shot_table.py CKPT [--methods sclip naclip ...]
        [--datasets ade150 voc21 ...] [--work-dir work_dirs/zero_shot_table]
        [--data-root ade150=data/ade/ADEChallengeData2016 ...] [--cfg-options k=v ...]
        [--force] [--launcher pytorch]
    # several GPUs (each cell's images split over the ranks, as tools/dist_test.sh):
    torchrun --nproc_per_node=8 tools/analysis_tools/zero_shot_table.py CKPT --launcher pytorch

Each cell (``configs/zero_shot/<method>/<method>_vit-b16_<dataset>.py``) runs in this process
through MMEngine's ``Runner`` as ``tools/test.py`` does, under ``WORK_DIR/cells/<preset>/``, and
leaves a ``manifest.json`` there: status, metrics, the git commit, SHA-256 of the config dump, of
the vocabulary and of the prompt templates, of the checkpoint, and the library versions. A rerun
skips every cell whose manifest says ``done`` for the same checkpoint and config (``--force``
reruns them). A benchmark whose files are absent is one ``missing: PATH not found`` cell, a cell
that raises is recorded as ``failed`` with its error line; the run goes on either way.
Class embeddings are kept on disk (``WORK_DIR/text_cache`` unless the config or
``SILC_SEG_TEXT_CACHE_DIR`` names another place), so a vocabulary shared by several cells with
the same text tower and templates is encoded once. ``WORK_DIR/zero_shot_table.{md,csv}`` hold the
table; published numbers come from ``docs/zero_shot_protocols.md``.
"""
import argparse
import csv
import glob
import hashlib
import json
import os
import os.path as osp
import re
import subprocess
import time
import traceback

import mmcv
import mmengine
import mmseg
import torch
from mmengine.config import Config
from mmengine.dist import get_rank, init_dist
from mmengine.runner import Runner

import silc_seg  # noqa: F401  (registers every module into mmseg's registries)
from silc_seg.models.utils import unwrap_model
from silc_seg.utils import (add_cfg_options_argument, add_launcher_arguments, close_process_group,
                            export_local_rank, load_model_checkpoint, merge_cfg_options,
                            prepare_runner_cfg, setup_cpu_distributed)
from silc_seg.utils.log_utils import quiet_library_warnings, runner_console_summary

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PRESETS_DIR = osp.join(REPO, 'configs', 'zero_shot')
DOCS = osp.join(REPO, 'docs', 'zero_shot_protocols.md')
DATASETS = ('ade150', 'pc59', 'pc60', 'voc20', 'voc21', 'cityscapes', 'coco-stuff171',
            'coco-object')
COLUMNS = ('method', 'dataset', 'status', 'mIoU', 'published', 'note')


def available_methods():
    """Every method with a preset folder under configs/zero_shot."""
    return sorted(
        name for name in os.listdir(PRESETS_DIR) if not name.startswith(('_', '.'))
        and glob.glob(osp.join(PRESETS_DIR, name, f'{name}_vit-b16_*.py')))


def parse_args(argv=None):
    methods = available_methods()
    parser = argparse.ArgumentParser(description='Zero-shot table of one checkpoint')
    parser.add_argument('checkpoint', help='checkpoint file (.pth or .safetensors)')
    parser.add_argument('--methods', nargs='+', default=methods, choices=methods)
    parser.add_argument('--datasets', nargs='+', default=list(DATASETS), choices=DATASETS)
    parser.add_argument('--work-dir', default='work_dirs/zero_shot_table')
    parser.add_argument(
        '--data-root',
        nargs='+',
        default=[],
        metavar='DATASET=DIR',
        help="a benchmark's data root, e.g. ade150=/data/ADEChallengeData2016")
    parser.add_argument('--force', action='store_true', help='rerun finished cells too')
    add_cfg_options_argument(
        parser,
        help='settings applied to every cell, in xxx=yyy format (checked against each config, '
        'as tools/test.py does)')
    add_launcher_arguments(parser)
    args = export_local_rank(parser.parse_args(argv))
    roots = {}
    for item in args.data_root:
        name, sep, root = item.partition('=')
        if not sep or name not in DATASETS:
            parser.error(f'--data-root takes DATASET=DIR with DATASET one of {DATASETS}, '
                         f'got {item!r}')
        roots[name] = root
    args.data_root = roots
    return args


# ------------------------------------------------------------------------------------- hashes
def sha256_file(path, chunk=1 << 24):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def git_commit():
    """``HEAD`` of the repository, ``+dirty`` when tracked files differ from it."""
    try:
        commit = subprocess.run(['git', '-C', REPO, 'rev-parse', 'HEAD'],
                                capture_output=True,
                                text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(
            ['git', '-C', REPO, 'status', '--porcelain', '--untracked-files=no'],
            capture_output=True,
            text=True,
            check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ('+dirty' if dirty else '')


def library_versions():
    return dict(
        torch=torch.__version__,
        mmengine=mmengine.__version__,
        mmseg=mmseg.__version__,
        mmcv=mmcv.__version__,
        silc_seg=silc_seg.__version__)


def published_numbers(path=DOCS):
    """``{preset name: published mIoU text}`` read from the method x dataset table of the docs
    (the last column of each ``| `<preset>` | ...`` row)."""
    if not osp.isfile(path):
        return {}
    numbers = {}
    with open(path, encoding='utf-8') as f:
        for line in f:
            match = re.match(r'\|\s*`([\w.-]+_vit-b16_[\w.-]+)`\s*\|', line)
            if match:
                numbers[match.group(1)] = line.rstrip().rstrip('|').rsplit('|', 1)[-1].strip()
    return numbers


def first_number(text):
    match = re.search(r'\d+(?:\.\d+)?', text or '')
    return float(match.group()) if match else None


# -------------------------------------------------------------------------------------- cells
def missing_paths(dataset_cfg):
    """The data root, image / annotation folders and split file of a dataset config that do
    not exist (relative paths resolved against the data root, as mmseg does)."""
    root = dataset_cfg.get('data_root') or ''
    prefix = dataset_cfg.get('data_prefix') or {}
    paths = [root] if root else []
    paths += [
        osp.join(root, prefix[key]) for key in ('img_path', 'seg_map_path') if prefix.get(key)
    ]
    if dataset_cfg.get('ann_file'):
        paths.append(osp.join(root, dataset_cfg['ann_file']))
    for path in paths:
        if not osp.exists(path):
            return path
    return None


def cell_config(method, dataset, args, work_dir):
    """The preset with the run's overrides; the config's SHA-256 is taken before the settings
    that do not change the evaluation are added (work dir, launcher, the default text cache
    under the work dir, so that a moved work dir or another rank count keeps the hash)."""
    path = osp.join(PRESETS_DIR, method, f'{method}_vit-b16_{dataset}.py')
    cfg = Config.fromfile(path)
    merge_cfg_options(cfg, args.cfg_options)
    if dataset in args.data_root:
        cfg.test_dataloader.dataset.data_root = args.data_root[dataset]
    digest = hashlib.sha256(cfg.pretty_text.encode()).hexdigest()
    if cfg.model.get('text_cache_dir') is None and not os.environ.get('SILC_SEG_TEXT_CACHE_DIR'):
        cfg.model.text_cache_dir = osp.join(osp.abspath(args.work_dir), 'text_cache')
    prepare_runner_cfg(cfg, path, work_dir, None, args.launcher)
    setup_cpu_distributed(cfg, args.launcher)
    cfg.load_from = None  # loaded after the key check, as tools/test.py does
    if cfg.get('visualizer'):
        # A visualizer of its own per cell: MMEngine would hand the cell the first instance of
        # the name (and its first cell's save_dir) again.
        cfg.visualizer.name = f'zero_shot_table_{osp.basename(work_dir)}_{time.time_ns()}'
    return path, cfg, digest


def read_manifest(path):
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def is_finished(manifest, checkpoint_sha256, config_sha256):
    return (isinstance(manifest, dict) and manifest.get('status') == 'done'
            and isinstance(manifest.get('metrics'), dict) and 'mIoU' in manifest['metrics']
            and manifest.get('checkpoint_sha256') == checkpoint_sha256
            and manifest.get('config_sha256') == config_sha256)


def run_cell(cfg, args):
    """Evaluate one preset in this process; returns (metrics, vocabulary, templates)."""
    with runner_console_summary():
        runner = Runner.from_cfg(cfg)
    model = unwrap_model(runner.model)
    load_model_checkpoint(model, args.checkpoint)
    metrics = runner.test()
    # numpy scalars (IoUMetric's) as plain floats, for the JSON manifest.
    metrics = {
        key: float(value) if hasattr(value, '__float__') else value
        for key, value in metrics.items()
    }
    return metrics, model.vocabulary, list(model.templates)


def evaluate(method, dataset, args, checkpoint_sha256, published):
    """One cell of the table: skipped, missing, done or failed; returns its row."""
    name = f'{method}_vit-b16_{dataset}'
    cell_dir = osp.join(args.work_dir, 'cells', name)
    manifest_path = osp.join(cell_dir, 'manifest.json')
    row = dict(
        method=method, dataset=dataset, mIoU=None, published=published.get(name, ''), note='')
    try:
        config_path, cfg, config_sha256 = cell_config(method, dataset, args, cell_dir)
    except Exception as error:  # a bad --cfg-options key, a broken preset: this cell only
        return dict(row, status='failed', note=f'failed: config: {first_line(error)}')
    previous = read_manifest(manifest_path)
    if not args.force and is_finished(previous, checkpoint_sha256, config_sha256):
        return dict(row, status='done', mIoU=previous['metrics']['mIoU'], note='skipped: finished')
    absent = missing_paths(cfg.test_dataloader.dataset)
    if absent is not None:
        return dict(row, status='missing', note=f'missing: {absent} not found')
    start = time.perf_counter()
    manifest = dict(
        preset=name,
        config=osp.relpath(config_path, REPO),
        method=method,
        dataset=dataset,
        checkpoint=osp.abspath(args.checkpoint),
        checkpoint_sha256=checkpoint_sha256,
        config_sha256=config_sha256,
        git_commit=git_commit(),
        versions=library_versions(),
        launcher=args.launcher,
        published=row['published'])
    try:
        metrics, vocabulary, templates = run_cell(cfg, args)
        if 'mIoU' not in metrics:
            raise KeyError(f'the evaluator returned no mIoU (got {sorted(metrics)})')
        manifest.update(
            status='done',
            metrics=metrics,
            vocabulary_sha256=sha256_json(vocabulary),
            templates_sha256=sha256_json(templates),
            num_classes=len(vocabulary),
            num_templates=len(templates))
        row.update(status='done', mIoU=metrics['mIoU'])
    except Exception as error:  # recorded; the next cell still runs
        manifest.update(status='failed', error=first_line(error))
        row.update(status='failed', note=f'failed: {first_line(error)}')
        os.makedirs(cell_dir, exist_ok=True)
        with open(osp.join(cell_dir, 'error.txt'), 'w', encoding='utf-8') as f:
            f.write(traceback.format_exc())
    manifest['seconds'] = round(time.perf_counter() - start, 2)
    if get_rank() == 0:
        os.makedirs(cell_dir, exist_ok=True)
        write_json(manifest_path, manifest)
    return row


def first_line(error):
    text = str(error).strip().splitlines()
    return f'{type(error).__name__}: {text[0] if text else ""}'.rstrip(': ')


def write_json(path, value):
    tmp = f'{path}.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(value, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


# -------------------------------------------------------------------------------------- table
def format_miou(value):
    return '' if value is None else f'{value:.2f}'


def markdown_table(rows, checkpoint):
    lines = [
        f'Zero-shot mIoU (%) of `{checkpoint}`; published: docs/zero_shot_protocols.md', '',
        '| method | dataset | mIoU | published | status |', '| --- | --- | --- | --- | --- |'
    ]
    for row in rows:
        status = row['note'] if row['status'] != 'done' else row['note'] or 'done'
        lines.append(f"| {row['method']} | {row['dataset']} | {format_miou(row['mIoU'])} | "
                     f"{row['published'] or '-'} | {status} |")
    return '\n'.join(lines) + '\n'


def write_tables(rows, args):
    os.makedirs(args.work_dir, exist_ok=True)
    text = markdown_table(rows, args.checkpoint)
    with open(osp.join(args.work_dir, 'zero_shot_table.md'), 'w', encoding='utf-8') as f:
        f.write(text)
    with open(
            osp.join(args.work_dir, 'zero_shot_table.csv'), 'w', newline='',
            encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS + ('published_mIoU', ))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                dict(
                    row,
                    mIoU=format_miou(row['mIoU']),
                    published_mIoU=first_number(row['published']) or ''))
    return text


def main(argv=None):
    args = parse_args(argv)
    quiet_library_warnings()
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint {args.checkpoint} not found')
    if args.launcher != 'none':
        # Joined once for every cell (the runners then skip it); gloo on a machine without GPU.
        if args.launcher == 'pytorch' and not torch.cuda.is_available():
            setup_cpu_distributed(Config(), args.launcher)
        else:
            init_dist(args.launcher)
    checkpoint_sha256 = sha256_file(args.checkpoint)
    published = published_numbers()
    cells = [(method, dataset) for method in args.methods for dataset in args.datasets]
    rows = []
    for index, (method, dataset) in enumerate(cells, 1):
        start = time.perf_counter()
        row = evaluate(method, dataset, args, checkpoint_sha256, published)
        rows.append(row)
        if get_rank() == 0:
            words = ([row['status'], format_miou(row['mIoU'])] if row['status'] == 'done' else
                     []) + [row['note'], f'({time.perf_counter() - start:.1f} s)']
            print(
                f'[{index}/{len(cells)}] {method} {dataset}: ' +
                ' '.join(word for word in words if word),
                flush=True)
    if get_rank() == 0:
        print(write_tables(rows, args), end='')
    close_process_group()
    return rows


if __name__ == '__main__':
    main()
