"""Convert OpenAI CLIP / OpenCLIP / OpenCLIP-SigLIP weights to a SILC state dict.

    python tools/model_converters/openclip2silc.py SRC DST --model ViT-B-16

SRC: an open_clip or OpenAI state dict (``.pt``, ``.bin``, ``.pth``, ``.safetensors``) or an
OpenAI TorchScript archive (``ViT-B-16.pt`` as downloaded by ``clip``). DST: ``.safetensors`` or
any other extension for ``torch.save``. The converted weights are checked against (and must load
exactly into) the towers of the arch config, whose path is printed as the last line.
"""
import argparse

from silc_seg.converters import (MODEL_CONFIGS, build_towers, choose_openclip_model, config_path,
                                 convert_openclip_state_dict, load_openclip_checkpoint,
                                 save_converted)

OPENCLIP_MODELS = sorted(MODEL_CONFIGS)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='open_clip / OpenAI checkpoint')
    parser.add_argument('dst', help='output file (.safetensors or torch.save)')
    parser.add_argument(
        '--model', required=True, choices=OPENCLIP_MODELS, help='open_clip model name')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    state_dict, is_openai_jit = load_openclip_checkpoint(args.src)
    model, notice = choose_openclip_model(args.model, state_dict, is_openai_jit)
    print(f'{args.src}: {notice}')
    converted = convert_openclip_state_dict(state_dict)
    config = config_path(model)
    save_converted(converted, build_towers(config), args.src, args.dst, model, config)


if __name__ == '__main__':
    main()
