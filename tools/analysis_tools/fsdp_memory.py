"""Computed (not measured) GPU memory per rank of a SILC / SigLIP pretraining config under FSDP.

    python tools/analysis_tools/fsdp_memory.py configs/silc/pretrain_silc_vit-l16_fsdp.py \
        --gpus 256 --global-batch 32768

The model is built on the meta device (no memory, no weights) to count its parameters: the
student's trainable ones, the EMA teacher's, and the largest FSDP unit (silc_fsdp_wrap_policy).
Per GPU, with N GPUs, FULL_SHARD, fp32 master weights and AdamW, bf16 compute and activation
checkpointing of every block (docs/scaling.md has the formulas and their sources):

- parameters 4 P_s / N, gradients 4 P_s / N, AdamW state 8 P_s / N, EMA teacher 4 P_t / N;
- gathered bf16 units: 2 bytes x (root unit + 2 largest units in flight, limit_all_gathers);
- activations: the bf16 input of every checkpointed block (2 s b h per block and view group),
  one block recomputed in full (34 s b h, Korthikanti et al. 2022 without the attention matrix,
  which scaled_dot_product_attention does not keep) and the distillation head's outputs;
  ``total_no_ac``: the same without activation checkpointing (34 s b h for every block).
"""
import argparse
import math

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

import silc_seg  # noqa: F401
from silc_seg.models.utils.fsdp import DEFAULT_UNIT_TYPES
from silc_seg.registry import MODELS

GIB = 1024**3


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--gpus', type=int, nargs='+', default=[256])
    parser.add_argument('--global-batch', type=int, default=32768)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def count(params) -> int:
    return sum(p.numel() for p in params)


def tokens(tower, size: int) -> int:
    patch = tower.patch_size
    return math.ceil(size / patch)**2 + tower.num_prefix_tokens


def model_counts(cfg: Config) -> dict:
    """Parameter counts and tower shapes of ``cfg.model``, built on the meta device."""
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_cfg = cfg.model.copy()
    model_cfg['tokenizer'] = None  # no parameters; the Gemma file may be absent
    model_cfg.pop('zero_shot_classes', None)
    with torch.device('meta'):
        model = MODELS.build(model_cfg)
    teacher = count(model.teacher_parameters())
    student = count(p for p in model.parameters() if p.requires_grad)
    # Each unit's own parameters (a nested unit, the prototype layer in its head, owns its own).
    owner = {}
    for module in model.modules():
        if type(module).__name__ in DEFAULT_UNIT_TYPES:
            for param in module.parameters():
                owner[id(param)] = id(module)
    units = {}
    for param in model.parameters():
        if id(param) in owner:
            units[owner[id(param)]] = units.get(owner[id(param)], 0) + param.numel()
    units = list(units.values())
    return dict(
        model=model,
        student=student,
        teacher=teacher,
        units=units,
        root=count(model.parameters()) - sum(units))


def per_gpu_bytes(cfg: Config, counts: dict, gpus: int, global_batch: int) -> dict:
    model = counts['model']
    batch = global_batch // gpus
    image, text = model.image_encoder, model.text_encoder
    views = _views(cfg)
    out = dict(
        params=4 * counts['student'] / gpus,
        grads=4 * counts['student'] / gpus,
        adamw=8 * counts['student'] / gpus,
        teacher=4 * counts['teacher'] / gpus,
        gathered=2 * (counts['root'] + 2 * max(counts['units'] or [0])))
    stored, widest, full = 0, 0, 0
    for size, num in views:
        s = tokens(image, size)
        stored += 2 * s * batch * num * image.width * image.depth
        widest = max(widest, 34 * s * batch * num * image.width)
        full += 34 * s * batch * num * image.width * image.depth
    length = text.context_length
    stored += 2 * length * batch * text.width * text.depth
    widest = max(widest, 34 * length * batch * text.width)
    full += 34 * length * batch * text.width * text.depth
    head = 0
    if getattr(model, 'with_distill', False):
        prototypes = model.distill_head.last_layer.out_features
        student_views = sum(num for _, num in views[:2])
        head = batch * prototypes * (student_views * (2 + 4 + 4) + views[0][1] * (2 + 4))
    out['activations'] = stored + widest + head
    out['total'] = sum(out.values())
    # Without activation checkpointing every block keeps its 34 s b h bytes.
    out['total_no_ac'] = out['total'] - out['activations'] + full + head
    out['batch'] = batch
    return out


def _views(cfg: Config):
    """``[(size, views)]``: global, local, contrastive crops of the pretraining pipeline."""
    get = cfg.get
    return [(get('global_crop_size', 224), get('num_global_crops', 2)),
            (get('local_crop_size', 96), get('num_local_crops', 6)),
            (get('global_crop_size', 224), get('num_contrastive_crops', 0))]


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    counts = model_counts(cfg)
    print(f'{args.config}: student {counts["student"] / 1e6:.1f}M trainable, teacher '
          f'{counts["teacher"] / 1e6:.1f}M, largest unit {max(counts["units"]) / 1e6:.1f}M, '
          f'root unit {counts["root"] / 1e6:.2f}M parameters')
    keys = [
        'params', 'grads', 'adamw', 'teacher', 'gathered', 'activations', 'total', 'total_no_ac'
    ]
    print('| GPUs | batch/GPU | ' + ' | '.join(keys) + ' (GiB) |')
    print('|' + '---|' * (len(keys) + 2))
    for gpus in args.gpus:
        row = per_gpu_bytes(cfg, counts, gpus, args.global_batch)
        print(f'| {gpus} | {row["batch"]} | ' + ' | '.join(f'{row[k] / GIB:.2f}'
                                                           for k in keys) + ' |')


if __name__ == '__main__':
    main()
