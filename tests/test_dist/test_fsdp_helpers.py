"""The FSDP helpers without a training run: parameter names without wrapper parts, the wrap
policy, the config preparation of ``tools/train.py`` on CPU, and per-parameter gradient
clipping over shards (2 gloo processes) against DINO's equation on the whole gradients."""

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

from silc_seg.engine.hooks.per_parameter_grad_clip_hook import clip_grad_per_parameter_sharded_
from silc_seg.models.layers.transformer import TransformerBlock
from silc_seg.models.utils.fsdp import clean_name, silc_checkpoint_fn, silc_fsdp_wrap_policy
from silc_seg.utils import prepare_strategy_cfg
from tests.launch import run_on_gloo_ranks


def test_clean_name():
    assert clean_name('_fsdp_wrapped_module.image_encoder.blocks.0._fsdp_wrapped_module.'
                      '_checkpoint_wrapped_module.attn.qkv.weight') == \
        'image_encoder.blocks.0.attn.qkv.weight'
    assert clean_name('distill_head._fsdp_wrapped_module') == 'distill_head'
    assert clean_name('teacher_head.last_layer.weight') == 'teacher_head.last_layer.weight'


def test_wrap_policy_and_checkpoint_fn():
    block = TransformerBlock(16, 2)
    assert silc_fsdp_wrap_policy(block, recurse=False, nonwrapped_numel=0)
    assert not silc_fsdp_wrap_policy(nn.Linear(2, 2), recurse=False, nonwrapped_numel=0)
    assert silc_fsdp_wrap_policy(nn.Linear(2, 2), recurse=True, nonwrapped_numel=0)
    assert silc_checkpoint_fn(block) and not silc_checkpoint_fn(nn.LayerNorm(4))


def fsdp_cfg():
    return Config(
        dict(
            strategy=dict(
                type='FSDPStrategy',
                model_wrapper=dict(
                    type='mmseg.TrainStepFSDP', mixed_precision=dict(param_dtype='bfloat16')))))


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU path')
def test_prepare_strategy_cfg_on_cpu():
    cfg = fsdp_cfg()
    assert prepare_strategy_cfg(cfg, 'pytorch')
    assert cfg.runner_type == 'FlexibleRunner'
    wrapper = cfg.strategy.model_wrapper
    assert wrapper.device_id == 'cpu' and 'mixed_precision' not in wrapper
    assert wrapper.type == 'mmseg.TrainStepFSDP'
    with pytest.raises(SystemExit, match='--launcher pytorch'):
        prepare_strategy_cfg(fsdp_cfg(), 'none')
    plain = Config(dict(model=dict(type='SILC')))
    assert not prepare_strategy_cfg(plain, 'pytorch') and 'runner_type' not in plain


WORLD_SIZE = 2


def _clip_worker(rank, grads, bounds):
    params = []
    for grad, bound in zip(grads, bounds):
        flat = grad.flatten()
        piece = flat[:bound] if rank == 0 else flat[bound:]
        param = nn.Parameter(torch.zeros(piece.numel()))
        param.grad = piece.clone() if piece.numel() else None  # empty slice: no grad
        params.append(param)
    clip_grad_per_parameter_sharded_(params, max_norm=1.0)
    return [p.grad.clone() if p.grad is not None else None for p in params]


@pytest.mark.dist
def test_per_parameter_clip_over_shards():
    """Each rank holds one slice of every gradient (one slice empty on a rank); after the
    sharded clip, the slices put together are DINO's ``g * min(1, max_norm / (|g| + 1e-6))``
    of the whole gradient."""
    generator = torch.Generator().manual_seed(0)
    grads = [
        torch.randn(5, 3, generator=generator) * 3,
        torch.randn(4, generator=generator) * 0.01,
        torch.randn(6, generator=generator)
    ]
    bounds = [7, 4, 0]  # the second gradient lives on rank 0 only, the third on rank 1 only
    results = run_on_gloo_ranks(_clip_worker, WORLD_SIZE, grads, bounds)
    for index, grad in enumerate(grads):
        expected = grad.flatten() * min(1.0, 1.0 / (grad.norm().item() + 1e-6))
        pieces = [results[r][index] for r in range(WORLD_SIZE) if results[r][index] is not None]
        torch.testing.assert_close(torch.cat(pieces), expected, rtol=1e-6, atol=1e-7)
    # The big gradient was clipped, the small one was not.
    assert torch.cat([results[0][0], results[1][0]]).norm() == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(results[0][1], grads[1].flatten())
