"""Convert DINO / DINOv2 backbone weights to a DINOViT state dict (ProxyCLIP's proxy VFM).

    python tools/model_converters/dino2silc.py SRC DST --model dino_vitb8 [--clip CLIP.pth]

SRC: ``dino_vitbase8_pretrain.pth``, ``dino_vitbase16_pretrain.pth`` (facebookresearch/dino),
``dinov2_vitb14_pretrain.pth``, ``dinov2_vitb14_reg4_pretrain.pth`` (facebookresearch/dinov2),
``.pth`` or ``.safetensors``. The weights are written under ``dense_forward.vfm.`` (the VFM of a
ProxyCLIP ``ZeroShotSegmentor``; ``--prefix`` changes it) and checked to load exactly into the
DINOViT of ``--model``. ``--clip``: a SILC state dict of the CLIP towers (from openclip2silc.py)
merged into DST, so that DST is the one checkpoint ``tools/test.py`` takes for the ProxyCLIP
presets (``configs/zero_shot/proxyclip/``).
"""
import argparse
import os
import os.path as osp

from silc_seg.converters import (DINO_MODELS, convert_dino_state_dict, load_openclip_checkpoint,
                                 save_state_dict, verify_state_dict)
from silc_seg.registry import MODELS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='DINO / DINOv2 backbone checkpoint')
    parser.add_argument('dst', help='output file (.safetensors or torch.save)')
    parser.add_argument(
        '--model', required=True, choices=sorted(DINO_MODELS), help='hub name of the checkpoint')
    parser.add_argument(
        '--prefix',
        default='dense_forward.vfm.',
        help="key prefix of the VFM (default: 'dense_forward.vfm.'; e.g. "
        "'vfm.' for init_cfg=dict(type='Pretrained', prefix='vfm.'))")
    parser.add_argument('--clip', help='converted CLIP towers (SILC state dict) to merge in')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import silc_seg.models  # noqa: F401  (registers DINOViT)

    prefix = args.prefix.rstrip('.')
    if not prefix:
        raise SystemExit('--prefix must name the VFM module, e.g. dense_forward.vfm')
    state_dict, _ = load_openclip_checkpoint(args.src)
    converted = convert_dino_state_dict(state_dict, prefix=prefix + '.')
    vfm_cfg = dict(type='DINOViT', **DINO_MODELS[args.model])
    verify_state_dict(converted, {prefix: MODELS.build(vfm_cfg)})
    if args.clip:
        clip, _ = load_openclip_checkpoint(args.clip)
        clashes = sorted(set(clip) & set(converted))
        if clashes:
            raise KeyError(f'{args.clip} already holds VFM keys: {clashes[:5]}')
        if not any(key.startswith('image_encoder.') for key in clip):
            raise KeyError(f'{args.clip} has no image_encoder.* weights: convert the CLIP '
                           'checkpoint with openclip2silc.py first')
        converted = {**clip, **converted}
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    save_state_dict(
        converted,
        args.dst,
        meta=dict(
            source=osp.basename(args.src),
            model=args.model,
            vfm=str(vfm_cfg),
            clip=osp.basename(args.clip or '')))
    print(f'saved {len(converted)} tensors to {args.dst}; VFM config:')
    print(vfm_cfg)


if __name__ == '__main__':
    main()
