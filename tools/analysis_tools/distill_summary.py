"""Does the self-distillation learn? First and last logged values of a SILC training run.

    python tools/analysis_tools/distill_summary.py work_dirs/demo_silc_tiny [--max-ratio 0.7]

Reads the run's ``vis_data/scalars.json`` (the newest run in the work dir) and prints
``loss_distill`` against ``ln K`` (K from the dumped config's distillation head), and the
teacher's target entropy, student-teacher KL and prototypes used per batch at the first and
the last logged iteration. Exits with 1 when the final ``loss_distill`` is above
``max_ratio * ln K`` or the teacher entropy did not fall, so scripts (``make demo``) can check.
"""
import argparse
import glob
import json
import math
import os.path as osp
import sys


def load_run(work_dir: str):
    runs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not runs:
        raise FileNotFoundError(f'no */vis_data/scalars.json under {work_dir}')
    with open(runs[-1]) as f:
        records = [json.loads(line) for line in f]
    train = [r for r in records if 'loss_distill' in r]
    if not train:
        raise ValueError(f'{runs[-1]} has no loss_distill: not a SILC run with distillation')
    configs = sorted(
        glob.glob(osp.join(osp.dirname(osp.dirname(runs[-1])), 'vis_data', 'config.py')) +
        glob.glob(osp.join(work_dir, '*.py')))
    return train, configs


def num_prototypes(config_files) -> int:
    from mmengine.config import Config
    for path in config_files:
        cfg = Config.fromfile(path)
        head = cfg.get('model', {}).get('distill_head')
        if head:
            return int(head['out_channels'])
    raise ValueError(f'no model.distill_head.out_channels in {config_files}')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir')
    parser.add_argument(
        '--max-ratio',
        type=float,
        default=0.7,
        help='largest final loss_distill / ln K that counts as learning')
    args = parser.parse_args(argv)
    train, configs = load_run(args.work_dir)
    log_k = math.log(num_prototypes(configs))
    first, last = train[0], train[-1]
    print(f'ln K = {log_k:.3f} ({args.max_ratio} ln K = {args.max_ratio * log_k:.3f})')
    for key in ('loss_distill', 'teacher_entropy', 'student_teacher_kl', 'prototypes_used'):
        if key in last:
            print(f'{key:>20}: iter {first["iter"]:>5} {first[key]:8.3f} -> iter '
                  f'{last["iter"]:>5} {last[key]:8.3f}' +
                  (f'  ({last[key] / log_k:.2f} ln K)' if key == 'loss_distill' else ''))
    ok = last['loss_distill'] <= args.max_ratio * log_k
    if 'teacher_entropy' in last:
        ok = ok and last['teacher_entropy'] < first['teacher_entropy']
    print('distillation learns: ' + ('yes' if ok else 'NO'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
