"""Convert a big_vision two-tower checkpoint (SigLIP / SILC ``.npz``) to a SILC state dict.

    python tools/model_converters/bigvision2silc.py webli_en_b16_224_63724782.npz \\
        siglip_b16_224.safetensors --model ViT-B-16-SigLIP

DST: ``.safetensors`` or any other extension for ``torch.save``. The converted weights are
checked against (and must load exactly into) the towers of the arch config, whose path is
printed as the last line.
"""
import argparse
import os.path as osp

import numpy as np

from silc_seg.converters import (SIGLIP2_MODEL_CONFIGS, build_towers, config_path,
                                 convert_big_vision_arrays, save_converted)

# SigLIP 2 .npz files also convert with siglip2silc.py, which finds the config from the shapes.
BIG_VISION_MODELS = ['ViT-B-16-SigLIP'] + sorted(SIGLIP2_MODEL_CONFIGS)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='big_vision .npz checkpoint')
    parser.add_argument('dst', help='output file (.safetensors or torch.save)')
    parser.add_argument(
        '--model', required=True, choices=BIG_VISION_MODELS, help='model name (open_clip naming)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.src):
        raise FileNotFoundError(f'{args.src} does not exist')
    with np.load(args.src, allow_pickle=False) as arrays:
        converted = convert_big_vision_arrays(arrays)
    config = config_path(args.model)
    save_converted(converted, build_towers(config), args.src, args.dst, args.model, config)


if __name__ == '__main__':
    main()
