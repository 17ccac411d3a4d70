"""Time a full SILC training step against the contrastive-only baseline, side by side.

SILC step: student forward + backward on the Ng global and Nl local crops (globals in one
forward, locals in one forward), teacher forward on the global crops, distillation head, both
losses, optimizer step and the EMA teacher update. Baseline: the same config with
``distill_head=None`` (no teacher, no head) trained on **one** global view per image-text pair,
which is what a CLIP / SigLIP run pays per pair: the ratio is the price of SILC over plain
contrastive pretraining at equal batch size. (A contrastive-only model fed both global views
would be an odd baseline: it doubles the image compute for an augmentation CLIP does not use.)

The two steps alternate iteration by iteration, so that load changes on a shared machine hit
both alike; medians are reported. The theoretical ratios count transformer FLOPs analytically at
the real token counts (patch embedding, qkv/out projections, attention ``QK^T`` and ``AV``, MLP)
with backward = 2x forward: for the image towers alone (student fwd+bwd of all views + teacher
fwd of the global views vs fwd+bwd of one view), and for the whole step (adding the text tower,
the same in both, and the distillation head). Optimizer and EMA costs are not counted.

Inside the SILC step the script also times the EMA teacher update and the teacher forward
(teacher tower on the global crops + teacher head; the device is synchronised around it) and
reports their medians as shares of the step, next to the teacher's share of the step FLOPs.
With ``--peak-tflops`` (the device's dense peak for the dtype, e.g. 989 for H100 SXM bf16) it
prints the model FLOP utilisation (analytical FLOPs of the step / time / peak).

With ``--masked-config`` it also times, in the same alternation, the step of a masked
self-distillation config (``MaskedSelfDistill``: MaskCLIP of Dong et al., not Zhou et al.'s
training-free MaskCLIP) on that config's own global views (``num_global_crops``, no local
crops): student forward on the unmasked views (contrastive), student forward on the masked
views + decoder + head, teacher forward on the unmasked views, masked language modelling,
optimizer step and the EMA update of every student/teacher pair.

Example::

    python tools/analysis_tools/benchmark_step.py configs/silc/demo_silc_tiny.py \\
        --iters 20 --batch-size 32 --masked-config configs/silc/demo_maskdistill_tiny.py
"""
import argparse
import logging
import statistics
from contextlib import nullcontext

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings

import silc_seg.models.pretrainers.silc as silc_module
from silc_seg.models.pretrainers.teacher import ema_update
from silc_seg.models.utils.compile import compile_transformer_blocks
from silc_seg.registry import MODELS, OPTIMIZERS
from silc_seg.utils import ConfigOverrideError, merge_cfg_options, mmengine_log_level
from silc_seg.utils.log_utils import quiet_library_warnings
from silc_seg.utils.timing import Stopwatch, time_call


def parse_args():
    parser = argparse.ArgumentParser(description='Time a SILC train step vs contrastive-only')
    parser.add_argument('config', help='pretraining config (model with distill_head)')
    parser.add_argument('--iters', type=int, default=10, help='timed iterations of each')
    parser.add_argument('--warmup', type=int, default=2, help='untimed iterations of each')
    parser.add_argument('--batch-size', type=int, default=8, help='image-text pairs per step')
    parser.add_argument('--amp', action='store_true', help='bf16 autocast')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--global-size', type=int, help='default: config global_crop_size')
    parser.add_argument('--local-size', type=int, help='default: config local_crop_size')
    parser.add_argument('--num-global', type=int, help='default: config num_global_crops')
    parser.add_argument('--num-local', type=int, help='default: config num_local_crops')
    parser.add_argument('--fused', action='store_true', help='fused AdamW')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile every transformer block (CompileBlocksHook)')
    parser.add_argument('--with-cp', action='store_true',
                        help='activation checkpointing of the towers\' blocks')
    parser.add_argument('--peak-tflops', type=float,
                        help='dense peak TFLOP/s of the device for the dtype, for MFU')
    parser.add_argument('--masked-config',
                        help='also time this masked self-distillation (MaskedSelfDistill) config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def transformer_flops(tokens: int, width: int, depth: int, mlp_hidden: int) -> float:
    """Forward FLOPs (2 per multiply-add) of ``depth`` pre-norm blocks on ``tokens`` tokens."""
    per_block = (2 * tokens * width * 3 * width  # qkv
                 + 2 * tokens * tokens * width * 2  # QK^T and AV
                 + 2 * tokens * width * width  # output projection
                 + 2 * tokens * width * mlp_hidden * 2)  # MLP
    return depth * per_block


def vit_forward_flops(image_encoder, image_size: int) -> float:
    """Forward FLOPs of ``SILCVisionTransformer`` on one square image."""
    width, patch = image_encoder.width, image_encoder.patch_size
    patches = (image_size // patch)**2
    tokens = patches + image_encoder.num_prefix_tokens
    mlp_hidden = image_encoder.blocks[0].mlp.fc1.out_features
    return (2 * patches * 3 * patch * patch * width  # patch embedding
            + transformer_flops(tokens, width, image_encoder.depth, mlp_hidden)
            + 2 * width * image_encoder.output_dim)  # projection of the pooled token


def text_forward_flops(text_encoder) -> float:
    """Forward FLOPs of ``SILCTextTransformer`` on one caption (full context)."""
    mlp_hidden = text_encoder.blocks[0].mlp.fc1.out_features
    return (transformer_flops(text_encoder.context_length, text_encoder.width,
                              text_encoder.depth, mlp_hidden)
            + 2 * text_encoder.width * text_encoder.output_dim)


def linear_flops(module) -> float:
    """Forward FLOPs of the linear layers of ``module`` on one input row."""
    return sum(2 * m.in_features * m.out_features for m in module.modules()
               if isinstance(m, torch.nn.Linear))


def step_flops(model, global_size, local_size, num_global, num_local):
    """FLOPs per image-text pair: ``(SILC image towers, baseline image tower, SILC full step,
    baseline full step)``; backward = 2x forward, the teacher runs forward only."""
    global_flops = vit_forward_flops(model.image_encoder, global_size)
    local_flops = vit_forward_flops(model.image_encoder, local_size) if num_local else 0.0
    num_views = num_global + num_local
    silc_image = 3 * (num_global * global_flops + num_local * local_flops) \
        + num_global * global_flops
    baseline_image = 3 * global_flops
    text = 3 * text_forward_flops(model.text_encoder)
    head = linear_flops(model.distill_head)
    silc_full = silc_image + text + 3 * num_views * head + num_global * head
    return silc_image, baseline_image, silc_full, baseline_image + text


def make_batch(batch_size, num_global, num_local, global_size, local_size, context_length):
    generator = torch.Generator().manual_seed(0)

    def views(num, size):
        return [torch.randint(0, 256, (batch_size, 3, size, size), generator=generator,
                              dtype=torch.uint8) for _ in range(num)]

    inputs = dict(global_crops=views(num_global, global_size),
                  text=torch.randint(1, 49407, (batch_size, context_length), generator=generator))
    if num_local:
        inputs['local_crops'] = views(num_local, local_size)
    return dict(inputs=inputs, data_samples=None)


def build(model_cfg, optimizer_cfg, device, compile_blocks=False):
    model = MODELS.build(model_cfg)
    with mmengine_log_level(logging.WARNING):  # not one line per parameter
        model.init_weights()
    model.to(device).train()
    if compile_blocks:
        compile_transformer_blocks(model)
    optimizer = OPTIMIZERS.build(dict(optimizer_cfg, params=model.parameters()))
    return model, OptimWrapper(optimizer)


def main():
    args = parse_args()
    quiet_library_warnings()
    cfg = Config.fromfile(args.config)
    try:
        merge_cfg_options(cfg, args.cfg_options)
    except ConfigOverrideError as err:
        raise SystemExit(f'--cfg-options {err}')
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if cfg.model.get('distill_head') is None:
        raise ValueError(f'{args.config} has no distill_head: nothing to compare')
    image_cfg = cfg.model.image_encoder
    global_size = args.global_size or cfg.get('global_crop_size', image_cfg.get('img_size'))
    local_size = args.local_size or cfg.get('local_crop_size', None)
    num_global = args.num_global or cfg.get('num_global_crops', 2)
    num_local = args.num_local if args.num_local is not None else cfg.get('num_local_crops', 6)
    if local_size is None and num_local:
        raise ValueError('the config has no local_crop_size: pass --local-size')
    device = torch.device(args.device)
    optimizer_cfg = cfg.optim_wrapper.optimizer.copy()
    if args.fused:
        optimizer_cfg['fused'] = True
    model_cfg = cfg.model.copy()
    if args.with_cp:
        model_cfg.image_encoder['with_cp'] = True
        model_cfg.text_encoder['with_cp'] = True

    torch.manual_seed(0)
    silc, silc_optim = build(model_cfg, optimizer_cfg, device, args.compile)
    baseline_cfg = model_cfg.copy()
    baseline_cfg.update(distill_head=None, distill_loss=None, teacher=None)
    baseline, baseline_optim = build(baseline_cfg, optimizer_cfg, device, args.compile)
    teacher_watch, ema_watch = Stopwatch(device), Stopwatch(device)
    # Instance attributes shadow the methods: time the teacher forward inside the step.
    teacher_tower = silc.teacher_image_encoder
    # (SILC.loss runs the teacher tower's forward_tokens once, then pool() in the head's path.)
    teacher_tower.forward_tokens = teacher_watch.wrap(teacher_tower.forward_tokens)
    teacher_tower.pool = teacher_watch.wrap(teacher_tower.pool)
    silc.teacher_head.forward = teacher_watch.wrap(silc.teacher_head.forward)
    # SILC.train_step updates the teacher itself (at the schedule's iteration 0): time it there.
    silc_module.ema_update = ema_watch.wrap(ema_update)
    MessageHub.get_current_instance().update_info('iter', 0)
    MessageHub.get_current_instance().update_info('max_iters', 1)
    context_length = silc.text_encoder.context_length
    silc_batch = make_batch(args.batch_size, num_global, num_local, global_size, local_size,
                            context_length)
    baseline_batch = make_batch(args.batch_size, 1, 0, global_size, local_size, context_length)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if args.amp else \
        nullcontext
    masked_step, masked_views = None, None
    if args.masked_config:
        masked_step, masked_views = masked_distill_step(args, optimizer_cfg, device, autocast)

    def silc_step():
        with autocast():
            silc.train_step(silc_batch, silc_optim)

    def baseline_step():
        with autocast():
            baseline.train_step(baseline_batch, baseline_optim)

    def timed(step):
        return time_call(step, device)

    for _ in range(args.warmup):
        silc_step()
        baseline_step()
    teacher_watch.take()
    ema_watch.take()
    silc_times, baseline_times, teacher_shares, ema_shares = [], [], [], []
    masked_times = []
    if masked_step is not None:
        for _ in range(args.warmup):
            masked_step()
    for _ in range(args.iters):
        silc_times.append(timed(silc_step))
        teacher_shares.append(teacher_watch.take() / silc_times[-1])
        ema_shares.append(ema_watch.take() / silc_times[-1])
        baseline_times.append(timed(baseline_step))
        if masked_step is not None:
            masked_times.append(timed(masked_step))

    silc_time, baseline_time = statistics.median(silc_times), statistics.median(baseline_times)
    silc_image, baseline_image, silc_full, baseline_full = step_flops(
        silc, global_size, local_size, num_global, num_local)
    teacher_flops = num_global * (vit_forward_flops(silc.image_encoder, global_size)
                                  + linear_flops(silc.distill_head))
    print(f'config: {args.config}  device: {device}  amp: {args.amp}  '
          f'batch: {args.batch_size} pairs  threads: {torch.get_num_threads()}  '
          f'fused AdamW: {args.fused}  compile: {args.compile}  with_cp: {args.with_cp}')
    print(f'SILC step ({num_global}x{global_size}px global + {num_local}x{local_size}px local, '
          f'teacher, head, EMA): {silc_time * 1e3:.1f} ms '
          f'({args.batch_size / silc_time:.3g} pairs/s)')
    print(f'contrastive-only step (1x{global_size}px view): {baseline_time * 1e3:.1f} ms '
          f'({args.batch_size / baseline_time:.3g} pairs/s)')
    print(f'measured ratio SILC / contrastive-only: {silc_time / baseline_time:.2f}')
    if masked_times:
        masked_time = statistics.median(masked_times)
        print(f'masked self-distillation step ({args.masked_config}: {masked_views}, masks, '
              f'teacher, decoders, MLM, EMA): {masked_time * 1e3:.1f} ms '
              f'({args.batch_size / masked_time:.3g} pairs/s); ratio to contrastive-only '
              f'{masked_time / baseline_time:.2f}, to SILC {masked_time / silc_time:.2f}')
    print(f'theoretical image-tower FLOP ratio: {silc_image / baseline_image:.2f} '
          f'({silc_image / 1e9:.3f} vs {baseline_image / 1e9:.3f} GFLOPs per pair)')
    print(f'theoretical full-step FLOP ratio (+ text tower, distillation head): '
          f'{silc_full / baseline_full:.2f} '
          f'({silc_full / 1e9:.3f} vs {baseline_full / 1e9:.3f} GFLOPs per pair)')
    print(f'share of the SILC step: teacher forward {statistics.median(teacher_shares):.1%} '
          f'(FLOPs: {teacher_flops / silc_full:.1%}), EMA update '
          f'{statistics.median(ema_shares):.1%} (not in the FLOP count)')
    if args.peak_tflops:
        peak = args.peak_tflops * 1e12
        print(f'MFU (analytical step FLOPs / time / {args.peak_tflops:g} TFLOP/s): SILC '
              f'{silc_full * args.batch_size / silc_time / peak:.1%}, contrastive-only '
              f'{baseline_full * args.batch_size / baseline_time / peak:.1%}')


def masked_distill_step(args, optimizer_cfg, device, autocast):
    """The training step of ``args.masked_config`` (towers as configured there, the
    benchmark's optimizer) and a description of its views."""
    cfg = Config.fromfile(args.masked_config)
    model_cfg = cfg.model.copy()
    if model_cfg.get('type') != 'MaskedSelfDistill':
        raise ValueError(f'{args.masked_config} is not a MaskedSelfDistill config')
    if args.with_cp:
        model_cfg.image_encoder['with_cp'] = True
        model_cfg.text_encoder['with_cp'] = True
    num_global = cfg.get('num_global_crops', 1)
    size = cfg.get('global_crop_size', model_cfg.image_encoder.get('img_size'))
    num_local = cfg.get('num_local_crops', 0) if model_cfg.get('distill_head') else 0
    local_size = cfg.get('local_crop_size', None)
    model, optim_wrapper = build(model_cfg, optimizer_cfg, device, args.compile)
    batch = make_batch(args.batch_size, num_global, num_local, size, local_size,
                       model.text_encoder.context_length)

    def step():
        with autocast():
            model.train_step(batch, optim_wrapper)  # the EMA update included

    views = f'{num_global}x{size}px' + (f' + {num_local}x{local_size}px' if num_local else '')
    return step, views


if __name__ == '__main__':
    main()
