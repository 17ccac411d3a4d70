"""Seeded study of pretraining objectives on the demo data, with paired confidence intervals.

One command trains every objective with every seed (same data, towers, crops, iterations and
batch; only the objective differs), evaluates each checkpoint and writes the raw per-run
results and a summary table::

    python tools/analysis_tools/silc_study.py --objectives clip silc distill \\
        --seeds 0 1 2 3 4 --jobs 2 --work-dir work_dirs/study --out docs/study

An objective ``NAME`` is the config ``configs/silc/demo_NAME_tiny.py`` (``NAME=path.py`` names
another file); the protocol and the results of the study: ``docs/results.md``. Per run:

1. ``tools/train.py CONFIG --cfg-options randomness.seed=S`` (a fresh process, ``--threads``
   CPU threads), which ends with the validation (retrieval recall, zero-shot mAP);
2. ``tools/test.py configs/silc/zs_demo.py CKPT`` with the plain and the NACLIP last block
   (zero-shot segmentation mIoU; ``--skip-zero-shot`` leaves it out: two processes less per
   run);
3. a linear probe on the frozen last-block patch features (``silc_seg.evaluation.linear_probe``:
   trained on the demo segmentation train split, scored on val); ``--probe-blocks`` adds probes
   on the patch tokens after earlier blocks (e.g. ``mid``: block ``depth // 2``).

``metrics.json`` in each run directory makes a finished run count as done, so the command can
be re-run to extend the study (more seeds or objectives) or to resume an interrupted one.
Outputs in ``--out``: ``runs.csv`` and ``runs.json`` (one row per run), ``summary.md`` (mean and
sample standard deviation per objective; paired differences to ``--reference`` with 95%
Student-t confidence intervals over seeds).
"""
import argparse
import csv
import glob
import json
import math
import os
import os.path as osp
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ZS_CONFIG = 'configs/silc/zs_demo.py'
SEG_ROOT = 'data/demo/seg'
# Columns of the summary, in order: (key in metrics.json, label, higher is better).
MEASURES: List[Tuple[str, str]] = [
    ('probe_mIoU', 'linear probe mIoU'),
    ('zs_mIoU_plain', 'ZS mIoU plain'),
    ('zs_mIoU_naclip', 'ZS mIoU NACLIP'),
    ('mean_R', 'retrieval mean R'),
    ('zs_mAP', 'ZS cls mAP'),
    ('loss_distill', 'final loss_distill'),
    ('teacher_entropy', 'final teacher entropy'),
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--objectives',
        nargs='+',
        default=['clip', 'silc', 'distill'],
        help='NAME (configs/silc/demo_NAME_tiny.py) or NAME=CONFIG.py')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument('--jobs', type=int, default=2, help='runs in parallel')
    parser.add_argument('--threads', type=int, default=1, help='CPU threads per run')
    parser.add_argument('--work-dir', default='work_dirs/study')
    parser.add_argument('--out', default='docs/study', help='where results are written')
    parser.add_argument(
        '--reference', default='clip', help='objective the paired differences are taken against')
    parser.add_argument(
        '--cfg-options',
        nargs='*',
        default=[],
        help='extra key=value overrides for every training run')
    parser.add_argument(
        '--checkpoint-every',
        type=int,
        default=50,
        help='keep a checkpoint every N iterations (patch-feature drift over '
        'training, tools/analysis_tools/patch_feature_drift.py)')
    parser.add_argument(
        '--probe-blocks',
        nargs='+',
        default=['last'],
        help="blocks whose patch tokens get a linear probe: N (the output of block N, 1-based), "
        "'mid' (block depth // 2) or 'last' (after ln_post, probe_mIoU); others are "
        'probe_mIoU_blockN')
    parser.add_argument(
        '--skip-zero-shot',
        action='store_true',
        help='no zero-shot segmentation (zs_mIoU_plain / zs_mIoU_naclip): saves the two '
        'tools/test.py processes of each run')
    parser.add_argument(
        '--summarize-only',
        action='store_true',
        help='only collect finished runs and write the outputs')
    parser.add_argument('--evaluate-run', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def resolve_objectives(specs: Sequence[str]) -> Dict[str, str]:
    objectives = {}
    for spec in specs:
        name, _, config = spec.partition('=')
        config = config or f'configs/silc/demo_{name}_tiny.py'
        if not osp.isfile(osp.join(REPO_ROOT, config)):
            raise FileNotFoundError(f'objective {name!r}: no config {config}')
        objectives[name] = config
    return objectives


def load_study_config(config: str, cfg_options: Sequence[str]):
    """``config`` with the study's ``--cfg-options`` applied, as the training runs see it."""
    from mmengine.config import Config, DictAction

    from silc_seg.utils import merge_cfg_options
    from silc_seg.utils.log_utils import quiet_library_warnings
    quiet_library_warnings()
    cfg = Config.fromfile(osp.join(REPO_ROOT, config))
    options = {}
    for option in cfg_options:
        key, value = option.split('=', 1)
        options[key] = DictAction._parse_iterable(value)
    return merge_cfg_options(cfg, options)


def check_comparable(objectives: Dict[str, str], cfg_options: Sequence[str]) -> dict:
    """Refuse a study whose runs would differ in anything but the objective."""
    fields = {}
    for name, config in objectives.items():
        cfg = load_study_config(config, cfg_options)
        fields[name] = dict(
            max_iters=cfg.train_cfg.max_iters,
            batch_size=cfg.train_dataloader.batch_size,
            data=cfg.train_dataloader.dataset.ann_file,
            image_encoder=cfg.model.image_encoder,
            text_encoder=cfg.model.text_encoder)
    reference = next(iter(fields.values()))
    for name, values in fields.items():
        different = [key for key in values if values[key] != reference[key]]
        if different:
            raise ValueError(f'objective {name!r} differs from {next(iter(fields))!r} in '
                             f'{different}: a study compares objectives at equal iterations, '
                             'batch, data and towers')
    summary = {key: reference[key] for key in ('max_iters', 'batch_size', 'data')}
    summary['cfg_options'] = list(cfg_options)
    return summary


def _run(cmd: List[str], log: str, threads: int) -> None:
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    with open(log, 'a') as f:
        f.write('$ ' + ' '.join(cmd) + '\n')
        f.flush()
        result = subprocess.run(cmd, cwd=REPO_ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
    if result.returncode:
        raise RuntimeError(f'command failed ({result.returncode}), see {log}: {" ".join(cmd)}')


def run_one(name: str, config: str, seed: int, args) -> Optional[dict]:
    run_dir = osp.abspath(osp.join(args.work_dir, name, f'seed{seed}'))
    metrics_file = osp.join(run_dir, 'metrics.json')
    if osp.isfile(metrics_file):
        with open(metrics_file) as f:
            metrics = json.load(f)
        # Evaluated by an interrupted study: name the run.
        metrics.setdefault('objective', name)
        metrics.setdefault('config', config)
        metrics.setdefault('seed', seed)
        return metrics
    os.makedirs(run_dir, exist_ok=True)
    log = osp.join(run_dir, 'study.log')
    start = time.time()
    _wait_for_other_training(run_dir)
    if _finished_training(run_dir, config, args.cfg_options):
        print(f'[study] {name} seed {seed}: training already finished, evaluating', flush=True)
    else:
        _train(config, seed, run_dir, log, args)
    train_s = time.time() - start
    _run([
        sys.executable,
        osp.abspath(__file__), '--evaluate-run', run_dir, '--probe-blocks', *args.probe_blocks,
        *(['--skip-zero-shot'] if args.skip_zero_shot else [])
    ], log, args.threads)
    return _finish(metrics_file, name, config, seed, train_s, start)


def _wait_for_other_training(run_dir: str, poll_s: float = 20.0) -> None:
    """Wait while another process (an interrupted study's orphan) still trains into run_dir."""
    needle = f'--work-dir\0{run_dir}\0'.encode()
    while True:
        busy = False
        for cmdline in glob.glob('/proc/[0-9]*/cmdline'):
            try:
                with open(cmdline, 'rb') as f:
                    args = f.read()
            except OSError:
                continue
            if needle in args and b'tools/train.py' in args:
                busy = True
                break
        if not busy:
            return
        time.sleep(poll_s)


_CONFIG_LOCK = threading.Lock()


def _finished_training(run_dir: str, config: str, cfg_options: Sequence[str]) -> bool:
    with _CONFIG_LOCK:  # Config.fromfile is not thread-safe
        max_iters = load_study_config(config, cfg_options).train_cfg.max_iters
    return osp.isfile(osp.join(run_dir, f'iter_{max_iters}.pth'))


def _train(config: str, seed: int, run_dir: str, log: str, args) -> None:
    _run([
        sys.executable, 'tools/train.py', config, '--work-dir', run_dir, '--cfg-options',
        f'randomness.seed={seed}', f'default_hooks.checkpoint.interval={args.checkpoint_every}',
        'default_hooks.checkpoint.max_keep_ckpts=-1', *args.cfg_options
    ], log, args.threads)


def _finish(metrics_file: str, name: str, config: str, seed: int, train_s: float,
            start: float) -> dict:
    with open(metrics_file) as f:
        metrics = json.load(f)
    metrics.update(
        objective=name,
        config=config,
        seed=seed,
        train_wall_s=round(train_s, 1),
        total_wall_s=round(time.time() - start, 1))
    with open(metrics_file, 'w') as f:
        json.dump(metrics, f, indent=1)
    print(
        f'[study] {name} seed {seed}: ' +
        ', '.join(f'{key}={metrics[key]:.2f}'
                  for key, _ in measures_of([metrics]) if metrics.get(key) is not None),
        flush=True)
    return metrics


def _last_scalars(run_dir: str) -> Tuple[dict, dict]:
    """Final logged training scalars and the last validation metrics of a run."""
    files = sorted(glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        raise FileNotFoundError(f'no scalars.json under {run_dir}')
    train, val = {}, {}
    with open(files[-1]) as f:
        for line in f:
            record = json.loads(line)
            if 'loss' in record:
                train = record
            elif any(key.startswith('retrieval/') for key in record):
                val = record
    return train, val


def _test_miou(run_dir: str, ckpt: str, variant: str) -> float:
    work_dir = osp.join(run_dir, f'zs_{variant}')
    cmd = [
        sys.executable, 'tools/test.py', ZS_CONFIG, ckpt, '--work-dir', work_dir, '--cfg-options',
        f'model.dense_variant={variant}'
    ]
    with open(osp.join(run_dir, f'zs_{variant}.log'), 'w') as log:
        subprocess.run(cmd, cwd=REPO_ROOT, check=True, stdout=log, stderr=subprocess.STDOUT)
    results = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    with open(results[-1]) as f:
        return float(json.load(f)['mIoU'])


def resolve_probe_blocks(specs: Sequence[str], depth: int) -> List[int]:
    """``--probe-blocks`` -> sorted 1-based block numbers (``'mid'``: ``depth // 2``,
    ``'last'``: ``depth``)."""
    blocks = set()
    for spec in specs:
        spec = str(spec)
        if spec == 'last':
            block = depth
        elif spec == 'mid':
            block = depth // 2
        elif spec.isdigit():
            block = int(spec)
        else:
            raise ValueError(f"--probe-blocks: {spec!r} is not a block number, 'mid' or 'last'")
        if not 1 <= block <= depth:
            raise ValueError(f'--probe-blocks: block {block} outside 1..{depth}')
        blocks.add(block)
    return sorted(blocks)


def probe_key(block: int, depth: int) -> str:
    """The metrics key of the linear probe on block ``block`` (1-based) of ``depth``."""
    return 'probe_mIoU' if block == depth else f'probe_mIoU_block{block}'


def probe_encoder(encoder_cfg: dict, state: Dict[str, object], block: int):
    """The image tower of ``encoder_cfg`` with the ``image_encoder.`` weights of ``state``,
    whose :meth:`forward` returns the patch tokens after block ``block`` (1-based; the last
    block's after ``ln_post``, earlier ones as the blocks leave them)."""
    from silc_seg.registry import MODELS
    encoder = MODELS.build(dict(encoder_cfg, out_indices=block - 1))
    prefix = 'image_encoder.'
    encoder.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    return encoder


def evaluate_run(run_dir: str,
                 probe_blocks: Sequence[str] = ('last', ),
                 zero_shot: bool = True) -> None:
    """Dense and global measures of one finished training run -> ``metrics.json``."""
    from mmengine.config import Config

    import silc_seg  # noqa: F401
    from silc_seg.evaluation.linear_probe import linear_probe_miou
    from silc_seg.models.data_preprocessors.silc_data_preprocessor import CLIP_MEAN, CLIP_STD
    from silc_seg.registry import MODELS
    from silc_seg.utils import torch_load_weights_only
    from silc_seg.utils.demo_data import CLASS_NAMES

    with open(osp.join(run_dir, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    train, val = _last_scalars(run_dir)
    logged = ('teacher_entropy', 'student_teacher_kl', 'prototypes_used', 'iter')
    metrics = {
        key: value
        for key, value in train.items() if key.startswith('loss') or key in logged
    }
    metrics['mean_R'] = val.get('retrieval/mean_R')
    metrics['zs_mAP'] = val.get('zero_shot/mAP')
    for variant in ('plain', 'naclip') if zero_shot else ():
        metrics[f'zs_mIoU_{variant}'] = _test_miou(run_dir, ckpt, variant)
    cfg = Config.fromfile(osp.join(REPO_ROOT, ZS_CONFIG))
    state = torch_load_weights_only(ckpt)['state_dict']
    depth = MODELS.build(cfg.model.image_encoder).depth
    for block in resolve_probe_blocks(probe_blocks, depth):
        encoder = probe_encoder(cfg.model.image_encoder, state, block)
        scores = linear_probe_miou(encoder, osp.join(REPO_ROOT, SEG_ROOT), len(CLASS_NAMES),
                                   CLIP_MEAN, CLIP_STD)
        key = probe_key(block, depth)
        metrics[key] = scores['probe_mIoU']
        metrics[key.replace('mIoU', 'aAcc')] = scores['probe_aAcc']
    # The plain block's patch embeddings over training (every kept checkpoint).
    from silc_seg.evaluation.linear_probe import load_seg_split
    from silc_seg.evaluation.patch_drift import drift_metrics
    images, labels = load_seg_split(osp.join(REPO_ROOT, SEG_ROOT), 'val', 100)
    checkpoints = sorted(
        glob.glob(osp.join(run_dir, 'iter_*.pth')),
        key=lambda path: int(path.rsplit('_', 1)[1].split('.')[0]))
    metrics['drift'] = [
        dict(
            iter=int(path.rsplit('_', 1)[1].split('.')[0]), **drift_metrics(path, images, labels))
        for path in checkpoints
    ]
    with open(osp.join(run_dir, 'metrics.json'), 'w') as f:
        json.dump(metrics, f, indent=1)


def t_quantile_975(dof: int) -> float:
    """Two-sided 95% Student-t quantile."""
    from scipy.stats import t
    return float(t.ppf(0.975, dof))


def mean_sd(values: Sequence[float]) -> Tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean)**2 for v in values) / (n - 1)) if n > 1 else float('nan')
    return mean, sd


def measures_of(rows: Sequence[dict]) -> List[Tuple[str, str]]:
    """The summary columns: :data:`MEASURES`, with the probes of earlier blocks that the rows
    have (``probe_mIoU_blockN``) after the last block's."""
    blocks = sorted({
        int(key[len('probe_mIoU_block'):])
        for row in rows
        for key in row
        if key.startswith('probe_mIoU_block') and key[len('probe_mIoU_block'):].isdigit()
    })
    extra = [(f'probe_mIoU_block{b}', f'linear probe mIoU block {b}') for b in blocks]
    return MEASURES[:1] + extra + MEASURES[1:]


def summarize(rows: List[dict], reference: str, setup: dict) -> str:
    measures = measures_of(rows)
    objectives = list(dict.fromkeys(row['objective'] for row in rows))
    by = {(row['objective'], row['seed']): row for row in rows}
    lines = [
        f'Setup: {json.dumps(setup)}', '',
        '| objective | n | ' + ' | '.join(label for _, label in measures) + ' |',
        '|---|---|' + '---|' * len(measures)
    ]
    for name in objectives:
        seeds = sorted(seed for (obj, seed) in by if obj == name)
        cells = []
        for key, _ in measures:
            values = [by[(name, s)][key] for s in seeds if by[(name, s)].get(key) is not None]
            if values:
                mean, sd = mean_sd(values)
                cells.append(f'{mean:.2f} ± {sd:.2f}')
            else:
                cells.append('-')
        lines.append(f'| {name} | {len(seeds)} | ' + ' | '.join(cells) + ' |')
    if reference in objectives:
        lines += [
            '', f'Paired differences (objective - {reference}, same seed): mean '
            '[95% t-interval], n seeds.', '',
            '| difference | ' + ' | '.join(label for _, label in measures) + ' |',
            '|---|' + '---|' * len(measures)
        ]
        for name in objectives:
            if name == reference:
                continue
            cells = []
            for key, _ in measures:
                diffs = [
                    by[(name, s)][key] - by[(reference, s)][key] for (obj, s) in by
                    if obj == name and (reference, s) in by and by[(
                        name, s)].get(key) is not None and by[(reference, s)].get(key) is not None
                ]
                if len(diffs) >= 2:
                    mean, sd = mean_sd(diffs)
                    half = t_quantile_975(len(diffs) - 1) * sd / math.sqrt(len(diffs))
                    cells.append(f'{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}] '
                                 f'n={len(diffs)}')
                else:
                    cells.append('-')
            lines.append(f'| {name} - {reference} | ' + ' | '.join(cells) + ' |')
    drift_keys = ('patch_acc_plain', 'patch_acc_naclip', 'patch_patch_cos', 'patch_cls_cos',
                  'patch_text_margin')
    drift_rows = []
    for name in objectives:
        per_iter: Dict[int, List[dict]] = {}
        for (obj, _), row in by.items():
            if obj == name:
                for point in row.get('drift', []):
                    per_iter.setdefault(point['iter'], []).append(point)
        for iteration in sorted(per_iter):
            points = per_iter[iteration]
            drift_rows.append(f'| {name} | {iteration} | {len(points)} | ' +
                              ' | '.join(f'{mean_sd([p[k] for p in points])[0]:.3f}'
                                         for k in drift_keys) + ' |')
    if drift_rows:
        lines += [
            '', 'Plain-block patch embeddings over training (mean over seeds; '
            'tools/analysis_tools/patch_feature_drift.py on 100 val images).', '',
            '| objective | iter | n | ' + ' | '.join(drift_keys) + ' |',
            '|---|---|---|' + '---|' * len(drift_keys), *drift_rows
        ]
    return '\n'.join(lines) + '\n'


def write_outputs(rows: List[dict], out: str, reference: str, setup: dict) -> str:
    os.makedirs(out, exist_ok=True)
    rows = sorted(rows, key=lambda row: (row['objective'], row['seed']))
    with open(osp.join(out, 'runs.json'), 'w') as f:
        json.dump(dict(setup=setup, runs=rows), f, indent=1)
    keys = ['objective', 'seed'] + sorted({k
                                           for row in rows
                                           for k in row} - {'objective', 'seed', 'drift'})
    with open(osp.join(out, 'runs.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=keys, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    summary = summarize(rows, reference, setup)
    with open(osp.join(out, 'summary.md'), 'w') as f:
        f.write(summary)
    return summary


def main(argv=None):
    args = parse_args(argv)
    if args.evaluate_run:
        evaluate_run(args.evaluate_run, args.probe_blocks, not args.skip_zero_shot)
        return
    objectives = resolve_objectives(args.objectives)
    setup = check_comparable(objectives, args.cfg_options)
    setup.update(
        seeds=args.seeds,
        threads_per_run=args.threads,
        jobs=args.jobs,
        probe_blocks=args.probe_blocks,
        zero_shot=not args.skip_zero_shot)
    jobs = [(name, config, seed) for seed in args.seeds for name, config in objectives.items()]
    rows = []
    if args.summarize_only:
        for name, _, seed in jobs:
            path = osp.join(args.work_dir, name, f'seed{seed}', 'metrics.json')
            if osp.isfile(path):
                with open(path) as f:
                    rows.append(json.load(f))
    else:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [
                pool.submit(run_one, name, config, seed, args) for name, config, seed in jobs
            ]
            for future in futures:
                try:
                    rows.append(future.result())
                except Exception as error:  # noqa: B902  one failed run loses no other
                    print(f'[study] {error}', flush=True)
    rows = [row for row in rows if row]
    if not rows:
        raise SystemExit('no finished run to summarize')
    print(write_outputs(rows, args.out, args.reference, setup))


if __name__ == '__main__':
    main()
