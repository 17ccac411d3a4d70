"""How the plain last block's patch embeddings change over demo pretraining.

    python tools/analysis_tools/patch_feature_drift.py work_dirs/study/clip/seed0/iter_*.pth \
        [--out drift.csv]

Prints, and with ``--out`` writes as CSV, the metrics of :mod:`silc_seg.evaluation.patch_drift`
for each checkpoint (patch accuracy with the plain and NACLIP blocks, patch-to-image and
patch-to-patch cosines, patch-text margin) on the demo segmentation val images.
"""
import argparse
import csv
import os.path as osp
import re
import sys

import silc_seg  # noqa: F401  (registers every module into mmseg's registries)
from silc_seg.evaluation.linear_probe import load_seg_split
from silc_seg.evaluation.patch_drift import drift_metrics
from silc_seg.utils.log_utils import quiet_library_warnings

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def main(argv=None):
    quiet_library_warnings()
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoints', nargs='+')
    parser.add_argument('--seg-root', default=osp.join(REPO_ROOT, 'data/demo/seg'))
    parser.add_argument('--max-images', type=int, default=100)
    parser.add_argument('--out', help='CSV file')
    args = parser.parse_args(argv)
    images, labels = load_seg_split(args.seg_root, 'val', args.max_images)
    rows = []
    for ckpt in args.checkpoints:
        match = re.search(r'iter_(\d+)', ckpt)
        row = dict(checkpoint=ckpt, iter=int(match.group(1)) if match else -1)
        row.update(drift_metrics(ckpt, images, labels))
        rows.append(row)
        print(
            ', '.join(f'{k}={v:.3f}' if isinstance(v, float) else f'{k}={v}'
                      for k, v in row.items()),
            flush=True)
    if args.out:
        with open(args.out, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == '__main__':
    sys.exit(main())
