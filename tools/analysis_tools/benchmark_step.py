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

With a SigLIP 2 recipe config (``model.type='SigLIP2'``) it times, alternating, the SigLIP-only
step (same towers, sigmoid loss, one whole-image view per pair), the recipe's first stage
(sigmoid loss + LocCa decoder on the whole image; half the pairs with a region box) and its
second stage (+ SILC distillation on the global and local crops, masked prediction, EMA), and
reports the step-time ratios, the run-average ratio (``switch_ratio`` of the run in the first
stage), the analytical FLOP ratios (the decoder counted on the sequences of the benchmark batch:
self- and cross-attention, MLP, the logits of the counted tokens only) and the peak memory of
each step: on CUDA ``torch.cuda.max_memory_allocated`` over the step minus the memory before it,
on CPU the peak resident set size of the step over the RSS before it (``VmHWM`` reset
through ``/proc/self/clear_refs``), in a fresh process per step type
(``--memory``: one step; the figure includes the gradients and the optimizer state that
the first step allocates)::

    python tools/analysis_tools/benchmark_step.py configs/silc/demo_siglip2_tiny.py \\
        --iters 10 --batch-size 32 --memory
"""
import argparse
import logging
import statistics
from contextlib import nullcontext

import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings

import silc_seg.models.pretrainers.silc as silc_module
from silc_seg.models.pretrainers.teacher import ema_update
from silc_seg.models.utils.compile import compile_transformer_blocks
from silc_seg.registry import MODELS, OPTIMIZERS
from silc_seg.utils import (add_cfg_options_argument, load_config, merge_cfg_options,
                            mmengine_log_level)
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
    parser.add_argument(
        '--compile',
        action='store_true',
        help='torch.compile every transformer block (CompileBlocksHook)')
    parser.add_argument(
        '--with-cp', action='store_true', help='activation checkpointing of the towers\' blocks')
    parser.add_argument(
        '--peak-tflops',
        type=float,
        help='dense peak TFLOP/s of the device for the dtype, for MFU')
    parser.add_argument(
        '--masked-config',
        help='also time this masked self-distillation (MaskedSelfDistill) config')
    parser.add_argument(
        '--caption-tokens',
        type=int,
        help='SigLIP 2 configs: caption length (default: the full context)')
    parser.add_argument(
        '--memory',
        action='store_true',
        help='SigLIP 2 configs: also measure the peak memory of each step')
    add_cfg_options_argument(parser)
    return parser.parse_args()


def transformer_flops(tokens: int, width: int, depth: int, mlp_hidden: int) -> float:
    """Forward FLOPs (2 per multiply-add) of ``depth`` pre-norm blocks on ``tokens`` tokens."""
    per_block = (
        2 * tokens * width * 3 * width  # qkv
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
            + transformer_flops(tokens, width, image_encoder.depth, mlp_hidden) +
            2 * width * image_encoder.output_dim)  # projection of the pooled token


def text_forward_flops(text_encoder) -> float:
    """Forward FLOPs of ``SILCTextTransformer`` on one caption (full context)."""
    mlp_hidden = text_encoder.blocks[0].mlp.fc1.out_features
    return (transformer_flops(text_encoder.context_length, text_encoder.width, text_encoder.depth,
                              mlp_hidden) + 2 * text_encoder.width * text_encoder.output_dim)


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


def crop_settings(cfg, num_global=2, num_local=6):
    """``(global size, local size, global crops, local crops)`` of a pretraining config, with
    ``num_global`` / ``num_local`` where the config names no crop count."""
    size = cfg.get('global_crop_size', cfg.model.image_encoder.get('img_size'))
    return (size, cfg.get('local_crop_size'), cfg.get('num_global_crops', num_global),
            cfg.get('num_local_crops', num_local))


def make_batch(batch_size, num_global, num_local, global_size, local_size, context_length):
    generator = torch.Generator().manual_seed(0)

    def views(num, size):
        return [
            torch.randint(
                0, 256, (batch_size, 3, size, size), generator=generator, dtype=torch.uint8)
            for _ in range(num)
        ]

    inputs = dict(
        global_crops=views(num_global, global_size),
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
    cfg = load_config(args.config, args.cfg_options)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if cfg.model.get('type') == 'SigLIP2':
        return siglip2_main(args, cfg)
    if cfg.model.get('distill_head') is None:
        raise ValueError(f'{args.config} has no distill_head: nothing to compare')
    global_size, local_size, num_global, num_local = crop_settings(cfg)
    global_size = args.global_size or global_size
    local_size = args.local_size or local_size
    num_global = args.num_global or num_global
    num_local = args.num_local if args.num_local is not None else num_local
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
    teacher_flops = num_global * (
        vit_forward_flops(silc.image_encoder, global_size) + linear_flops(silc.distill_head))
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
    size, local_size, num_global, num_local = crop_settings(cfg, num_global=1, num_local=0)
    num_local = num_local if model_cfg.get('distill_head') else 0
    model, optim_wrapper = build(model_cfg, optimizer_cfg, device, args.compile)
    batch = make_batch(args.batch_size, num_global, num_local, size, local_size,
                       model.text_encoder.context_length)

    def step():
        with autocast():
            model.train_step(batch, optim_wrapper)  # the EMA update included

    views = f'{num_global}x{size}px' + (f' + {num_local}x{local_size}px' if num_local else '')
    return step, views


# --------------------------------------------------------------------------------------------
# SigLIP 2 recipe vs SigLIP-only
STEP_KINDS = ('siglip', 'stage1', 'stage2')


def siglip2_models_cfgs(model_cfg):
    """Configs of the SigLIP-only baseline and of the recipe held in each stage."""
    baseline = dict(type='SILC', contrastive_loss=model_cfg.contrastive_loss)
    for key in ('image_encoder', 'text_encoder', 'tokenizer', 'data_preprocessor'):
        if key in model_cfg:
            baseline[key] = model_cfg[key]
    stage1 = dict(model_cfg, switch_iter=10**12)
    stage2 = dict(model_cfg, switch_iter=0)
    return dict(siglip=baseline, stage1=stage1, stage2=stage2)


def siglip2_batches(cfg, batch_size, context_length, caption_tokens=None):
    """The recipe's batch (global, local and whole-image views, captions of
    ``caption_tokens`` ids then padding (default: the full context), one region of 4 ids on
    every second pair) and the baseline's (the whole-image view and the captions)."""
    size, local_size, num_global, num_local = crop_settings(cfg)
    recipe = make_batch(batch_size, num_global, num_local, size, local_size, context_length)
    generator = torch.Generator().manual_seed(1)
    inputs = recipe['inputs']
    if caption_tokens is not None:
        inputs['text'][:, caption_tokens:] = 0
    inputs['contrastive_crops'] = [
        torch.randint(0, 256, (batch_size, 3, size, size), generator=generator, dtype=torch.uint8)
    ]
    region_text = torch.zeros(batch_size, 1, context_length, dtype=torch.long)
    region_text[:, 0, :4] = torch.randint(1, 49407, (batch_size, 4), generator=generator)
    inputs['region_text'] = region_text
    inputs['region_boxes'] = torch.tensor([[[0.1, 0.2, 0.6, 0.9]]]).repeat(batch_size, 1, 1)
    inputs['region_valid'] = (torch.arange(batch_size) % 2 == 0)[:, None]
    baseline = dict(
        inputs=dict(global_crops=inputs['contrastive_crops'], text=inputs['text']),
        data_samples=None)
    return recipe, baseline, (size, local_size, num_global, num_local)


def decoder_flops(decoder, batch_inputs) -> float:
    """Forward FLOPs of the LocCa decoder on the sequences of a batch (all tasks)."""
    blocks = decoder.blocks.layers
    width, mlp_hidden = decoder.input_proj.out_features, blocks[0].linear1.out_features
    tasks = decoder.build_sequences(batch_inputs['text'], batch_inputs['region_text'],
                                    batch_inputs['region_boxes'], batch_inputs['region_valid'])
    total = 0.0
    memory = batch_inputs['memory_tokens']
    for item in tasks.values():
        num, length = item['sequences'].shape
        length -= 1
        cross = len(blocks) * (
            4 * length * width * width  # query and output projections
            + 4 * memory * width * width  # key and value projections
            + 4 * length * memory * width)  # QK^T and AV
        total += num * (
            transformer_flops(length, width, len(blocks), mlp_hidden) + cross +
            2 * memory * decoder.input_proj.in_features * width)
        total += 2 * int(item['loss_mask'].sum()) * width * decoder.num_classes
    return total


def siglip2_flops(model, batch, shapes, batch_size):
    """FLOPs per step ``(siglip, stage1, stage2)``; backward = 2x forward, the teacher
    forward only; the masked student pass counts as a full forward (mask tokens stay in)."""
    size, local_size, num_global, num_local = shapes
    encoder = model.image_encoder
    whole = vit_forward_flops(encoder, size)
    text = text_forward_flops(model.text_encoder)
    siglip = 3 * batch_size * (whole + text)
    inputs = dict(
        batch['inputs'], memory_tokens=(size // encoder.patch_size)**2 + encoder.num_prefix_tokens)
    stage1 = siglip + 3 * decoder_flops(model.caption_decoder, inputs)
    global_flops = vit_forward_flops(encoder, size)
    local_flops = vit_forward_flops(encoder, local_size) if num_local else 0.0
    patches = (size // encoder.patch_size)**2
    masked = int(round(model.image_mask_ratio * patches))
    head, masked_head = linear_flops(model.distill_head), linear_flops(model.masked_head)
    per_pair = (
        3 * (num_global * global_flops + num_local * local_flops)  # distillation views
        + num_global * global_flops  # teacher
        + 3 * num_global * global_flops  # masked student
        + head * (3 * (num_global + num_local) + num_global) + masked_head * num_global *
        (3 * masked + patches))
    return siglip, stage1, stage1 + batch_size * per_pair


def siglip2_build_all(cfg, device, compile_blocks=False):
    optimizer_cfg = cfg.optim_wrapper.optimizer.copy()
    torch.manual_seed(0)
    built = {}
    for kind, model_cfg in siglip2_models_cfgs(cfg.model.copy()).items():
        built[kind] = build(model_cfg, optimizer_cfg, device, compile_blocks)
    return built


def siglip2_memory_child(config, cfg_options, kind, batch_size, caption_tokens, queue):
    """Peak memory of one step type in this (fresh) process: see the module docstring."""
    import resource

    cfg = Config.fromfile(config)
    merge_cfg_options(cfg, cfg_options)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 0)
    hub.update_info('max_iters', 1)
    model_cfg = siglip2_models_cfgs(cfg.model.copy())[kind]
    torch.manual_seed(0)
    model, optim_wrapper = build(model_cfg, cfg.optim_wrapper.optimizer.copy(),
                                 torch.device('cpu'))
    recipe, baseline, _ = siglip2_batches(cfg, batch_size, model.text_encoder.context_length,
                                          caption_tokens)
    batch = baseline if kind == 'siglip' else recipe
    with open('/proc/self/statm') as f:
        rss_built = int(f.read().split()[1]) * resource.getpagesize()
    # Reset the peak RSS (VmHWM) to the current RSS (Linux >= 4.0), so that the peak is the
    # step's, not that of building the model.
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    model.train_step(batch, optim_wrapper)
    with open('/proc/self/status') as f:
        peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith('VmHWM'))
    queue.put((kind, peak - rss_built))


def siglip2_main(args, cfg):
    device = torch.device(args.device)
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 0)
    hub.update_info('max_iters', 1)
    built = siglip2_build_all(cfg, device, args.compile)
    recipe_model = built['stage1'][0]
    recipe, baseline, shapes = siglip2_batches(cfg, args.batch_size,
                                               recipe_model.text_encoder.context_length,
                                               args.caption_tokens)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if args.amp else \
        nullcontext
    on_cuda = device.type == 'cuda'
    peaks = {kind: [] for kind in STEP_KINDS}

    def step(kind):
        model, optim_wrapper = built[kind]
        batch = baseline if kind == 'siglip' else recipe
        if on_cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
        with autocast():
            model.train_step(batch, optim_wrapper)
        if on_cuda:
            torch.cuda.synchronize(device)
            peaks[kind].append(torch.cuda.max_memory_allocated(device) - before)

    for _ in range(args.warmup):
        for kind in STEP_KINDS:
            step(kind)
    assert bool(built['stage2'][0].self_distill_on) and not bool(recipe_model.self_distill_on)
    times = {kind: [] for kind in STEP_KINDS}
    for _ in range(args.iters):
        for kind in STEP_KINDS:
            times[kind].append(time_call(lambda: step(kind), device))
    median = {kind: statistics.median(values) for kind, values in times.items()}
    flops = dict(zip(STEP_KINDS, siglip2_flops(recipe_model, recipe, shapes, args.batch_size)))
    ratio = recipe_model.switch_ratio
    size, local_size, num_global, num_local = shapes
    print(f'config: {args.config}  device: {device}  amp: {args.amp}  batch: '
          f'{args.batch_size} pairs  threads: {torch.get_num_threads()}  iters: {args.iters}  '
          f'caption tokens: {args.caption_tokens or "full context"}')
    names = dict(
        siglip=f'SigLIP-only (1x{size}px whole image)',
        stage1='recipe stage 1 (sigmoid + LocCa decoder)',
        stage2=f'recipe stage 2 (+ {num_global}x{size}px global, {num_local}x'
        f'{local_size}px local: distillation, masked prediction, EMA)')
    for kind in STEP_KINDS:
        print(f'{names[kind]}: {median[kind] * 1e3:.1f} ms, time ratio '
              f'{median[kind] / median["siglip"]:.2f}, FLOP ratio '
              f'{flops[kind] / flops["siglip"]:.2f} ({flops[kind] / 1e9:.2f} GFLOPs/step)')
    run_time = ratio * median['stage1'] + (1 - ratio) * median['stage2']
    run_flops = ratio * flops['stage1'] + (1 - ratio) * flops['stage2']
    print(f'run average ({ratio:.0%} in stage 1): time ratio {run_time / median["siglip"]:.2f}, '
          f'FLOP ratio {run_flops / flops["siglip"]:.2f}')
    if on_cuda:
        for kind in STEP_KINDS:
            print(f'peak memory {kind}: {max(peaks[kind]) / 2**20:.0f} MiB over the step '
                  f'(ratio {max(peaks[kind]) / max(peaks["siglip"]):.2f})')
    elif args.memory:
        import multiprocessing as mp
        context = mp.get_context('spawn')
        queue = context.Queue()
        results = {}
        for kind in STEP_KINDS:
            process = context.Process(
                target=siglip2_memory_child,
                args=(args.config, args.cfg_options, kind, args.batch_size, args.caption_tokens,
                      queue))
            process.start()
            found, value = queue.get(timeout=1800)
            process.join()
            results[found] = value
        for kind in STEP_KINDS:
            print(f'peak RSS over the built model, {kind}: {results[kind] / 2**20:.0f} MiB '
                  f'(ratio {results[kind] / results["siglip"]:.2f})')


if __name__ == '__main__':
    main()
