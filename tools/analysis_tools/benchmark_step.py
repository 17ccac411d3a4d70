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

Example::

    python tools/analysis_tools/benchmark_step.py configs/silc/demo_silc_tiny.py \\
        --iters 20 --batch-size 32
"""
import argparse
import statistics
import time
from contextlib import nullcontext

import torch
from mmengine.config import Config, DictAction
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings

from silc_seg.engine.hooks.ema_teacher_hook import ema_update
from silc_seg.registry import MODELS, OPTIMIZERS


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


def build(model_cfg, optimizer_cfg, device):
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.to(device).train()
    optimizer = OPTIMIZERS.build(dict(optimizer_cfg, params=model.parameters()))
    return model, OptimWrapper(optimizer)


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
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
    optimizer_cfg = cfg.optim_wrapper.optimizer

    torch.manual_seed(0)
    silc, silc_optim = build(cfg.model, optimizer_cfg, device)
    baseline_cfg = cfg.model.copy()
    baseline_cfg.update(distill_head=None, distill_loss=None)
    baseline, baseline_optim = build(baseline_cfg, optimizer_cfg, device)
    context_length = silc.text_encoder.context_length
    silc_batch = make_batch(args.batch_size, num_global, num_local, global_size, local_size,
                            context_length)
    baseline_batch = make_batch(args.batch_size, 1, 0, global_size, local_size, context_length)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if args.amp else \
        nullcontext

    def silc_step():
        with autocast():
            silc.train_step(silc_batch, silc_optim)
        ema_update(silc.teacher_image_encoder, silc.image_encoder, 0.996)
        ema_update(silc.teacher_head, silc.distill_head, 0.996)

    def baseline_step():
        with autocast():
            baseline.train_step(baseline_batch, baseline_optim)

    def timed(step):
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    for _ in range(args.warmup):
        silc_step()
        baseline_step()
    silc_times, baseline_times = [], []
    for _ in range(args.iters):
        silc_times.append(timed(silc_step))
        baseline_times.append(timed(baseline_step))

    silc_time, baseline_time = statistics.median(silc_times), statistics.median(baseline_times)
    silc_image, baseline_image, silc_full, baseline_full = step_flops(
        silc, global_size, local_size, num_global, num_local)
    print(f'config: {args.config}  device: {device}  amp: {args.amp}  '
          f'batch: {args.batch_size} pairs  threads: {torch.get_num_threads()}')
    print(f'SILC step ({num_global}x{global_size}px global + {num_local}x{local_size}px local, '
          f'teacher, head, EMA): {silc_time * 1e3:.1f} ms '
          f'({args.batch_size / silc_time:.3g} pairs/s)')
    print(f'contrastive-only step (1x{global_size}px view): {baseline_time * 1e3:.1f} ms '
          f'({args.batch_size / baseline_time:.3g} pairs/s)')
    print(f'measured ratio SILC / contrastive-only: {silc_time / baseline_time:.2f}')
    print(f'theoretical image-tower FLOP ratio: {silc_image / baseline_image:.2f} '
          f'({silc_image / 1e9:.3f} vs {baseline_image / 1e9:.3f} GFLOPs per pair)')
    print(f'theoretical full-step FLOP ratio (+ text tower, distillation head): '
          f'{silc_full / baseline_full:.2f} '
          f'({silc_full / 1e9:.3f} vs {baseline_full / 1e9:.3f} GFLOPs per pair)')


if __name__ == '__main__':
    main()
