"""Generate the procedural demo data set (deterministic, a few seconds).

    python tools/misc/make_demo_data.py --out data/demo [--num-train 3000] [--num-val 200]
        [--shards 8]    # also the training pairs as WebDataset shards (demo_silc_wds_tiny.py)

Re-running with the same arguments is a no-op (see ``silc_seg.utils.demo_data``).
"""
import argparse
import time

from silc_seg.utils.demo_data import CLASS_NAMES, make_demo_data, write_demo_shards


def parse_args():
    parser = argparse.ArgumentParser(description='Generate the silc-seg demo data')
    parser.add_argument('--out', default='data/demo', help='output directory')
    parser.add_argument('--num-train', type=int, default=3000)
    parser.add_argument('--num-val', type=int, default=200)
    parser.add_argument('--image-size', type=int, default=96)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--shards',
        type=int,
        default=0,
        help='also write the training pairs as this many WebDataset shards '
        'under <out>/shards/')
    parser.add_argument(
        '--num-seg-train',
        type=int,
        default=200,
        help='labelled images of the segmentation train split (linear probe)')
    parser.add_argument(
        '--force', action='store_true', help='rewrite even if the same data is already there')
    return parser.parse_args()


def main():
    args = parse_args()
    start = time.time()
    written = make_demo_data(args.out, args.num_train, args.num_val, args.image_size, args.seed,
                             args.force, args.num_seg_train)
    state = 'written' if written else 'already up to date'
    print(f'demo data {state} in {args.out} ({args.num_train} train / {args.num_val} val '
          f'pairs, {len(CLASS_NAMES)} concepts, {time.time() - start:.1f} s)')
    if args.shards:
        paths = write_demo_shards(args.out, args.shards)
        print(f'{len(paths)} WebDataset shards: {paths[0]} .. {paths[-1]}')


if __name__ == '__main__':
    main()
