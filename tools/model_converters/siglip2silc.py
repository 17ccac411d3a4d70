"""Convert SigLIP 2 weights (open_clip / timm / big_vision ``.npz``) to a SILC state dict.

    python tools/model_converters/siglip2silc.py siglip2_b16_224.npz siglip2_b16.safetensors
    python tools/model_converters/siglip2silc.py open_clip_model.safetensors DST \\
        --model ViT-B-16-SigLIP2-384

SRC: big_vision ``.npz`` (fixed-resolution or NaFlex), an open_clip ``ViT-*-SigLIP2*`` state dict
or a timm SigLIP trunk (image tower only). The arch config is the SigLIP 2 config whose shapes
fit the weights, or that of ``--model`` (which must fit). The converted weights must load exactly
into its towers; its path is printed as the last line. DST: ``.safetensors`` or any other
extension for ``torch.save``.
"""
import argparse

from mmengine.config import Config

from silc_seg.converters import (MODEL_CONFIGS, SIGLIP2_NAFLEX_MODEL_CONFIGS, build_towers,
                                 convert_siglip2, save_converted)
from silc_seg.registry import MODELS
from silc_seg.utils import get_config_path

MODEL_NAMES = dict(MODEL_CONFIGS, **SIGLIP2_NAFLEX_MODEL_CONFIGS)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='big_vision .npz, open_clip or timm checkpoint')
    parser.add_argument('dst', help='output file (.safetensors or torch.save)')
    parser.add_argument(
        '--model',
        choices=sorted(MODEL_NAMES),
        help='open_clip model name (default: found from the weights)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    converted, config = convert_siglip2(args.src, args.model)
    if any(k.startswith('text_encoder.') for k in converted):
        towers = build_towers(config)
    else:
        print(f'{args.src} holds an image tower only: saving image_encoder weights')
        image_cfg = Config.fromfile(get_config_path(config)).image_encoder
        towers = dict(image_encoder=MODELS.build(image_cfg))
    model = next((name for name, path in MODEL_NAMES.items() if path == config), None)
    save_converted(converted, towers, args.src, args.dst, model, config)


if __name__ == '__main__':
    main()
