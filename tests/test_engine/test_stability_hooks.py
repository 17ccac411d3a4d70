"""DINO's stability options: per-parameter gradient clipping, freezing the prototype layer,
student drop-path; and the EMA momentum options (fixed, cosine, batch-size scaling)."""
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner

from silc_seg.engine.hooks import FreezeLastLayerHook, PerParameterGradClipHook
from silc_seg.models.pretrainers import TeacherSchedule
from silc_seg.models.pretrainers.teacher import scale_momentum
from tests.test_engine.test_teacher import runner_cfg
from tests.test_models.test_silc import batch, build, image_encoder_cfg


def fake_runner(model, optim_wrapper, batch_size=4, world_size=1):
    logs = []
    return SimpleNamespace(
        model=model,
        optim_wrapper=optim_wrapper,
        iter=0,
        max_iters=10,
        train_dataloader=SimpleNamespace(batch_size=batch_size),
        logger=SimpleNamespace(info=logs.append, warning=logs.append))


@pytest.mark.slow
def test_per_parameter_clipping_matches_dino():
    model = build().train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    optim_wrapper = OptimWrapper(optimizer)
    hook = PerParameterGradClipHook(max_norm=0.05)
    hook.before_train(fake_runner(model, optim_wrapper))
    losses = model(batch(), mode='loss')
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    before = {
        name: p.detach().clone()
        for name, p in model.named_parameters() if p.grad is not None
    }
    # facebookresearch/dino utils.clip_gradients, written out: each gradient on its own.
    expected = {}
    for name, p in model.named_parameters():
        if p.grad is None:
            continue
        norm = p.grad.norm(2)
        coef = 0.05 / (norm + 1e-6)
        expected[name] = p.grad * coef if coef < 1 else p.grad.clone()
    assert any(p.grad.norm() > 0.05 for p in model.parameters() if p.grad is not None)
    optim_wrapper.step()
    for name, p in model.named_parameters():
        if name in expected:  # SGD, lr 1: the step is the clipped gradient
            torch.testing.assert_close(
                before[name] - p.detach(), expected[name], rtol=1e-5, atol=1e-7, msg=name)
    hook.after_train(None)
    with pytest.raises(ValueError):
        PerParameterGradClipHook(max_norm=0)


@pytest.mark.slow
def test_freeze_last_layer_for_first_iterations(tmp_path):
    cfg = runner_cfg(tmp_path, max_iters=4)
    cfg['custom_hooks'] = cfg['custom_hooks'] + [dict(type='FreezeLastLayerHook', freeze_iters=2)]
    cfg['optim_wrapper'] = dict(optimizer=dict(type='AdamW', lr=0.01, weight_decay=0.1))
    runner = Runner.from_cfg(cfg)
    snapshots = []

    class Snapshot(Hook):

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            head = runner.model.distill_head
            snapshots.append(
                dict(
                    last=head.last_layer.parametrizations.weight.original1.detach().clone(),
                    mlp=head.mlp[0].weight.detach().clone()))

    runner.register_hook(Snapshot(), priority='LOWEST')
    start = runner.model.distill_head.last_layer.parametrizations.weight.original1.detach().clone()
    runner.train()
    assert torch.equal(start, snapshots[0]['last'])
    # Iterations 0 and 1: the prototypes do not move (not even weight decay); the MLP does.
    assert torch.equal(snapshots[0]['last'], snapshots[1]['last'])
    assert not torch.equal(snapshots[0]['mlp'], snapshots[1]['mlp'])
    assert not torch.equal(snapshots[1]['last'], snapshots[2]['last'])
    with pytest.raises(ValueError):
        FreezeLastLayerHook(freeze_iters=-1)


def test_freeze_needs_matching_parameters():
    model = build(distill=False)
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(RuntimeError, match='no trainable parameter'):
        FreezeLastLayerHook(freeze_iters=3).before_train(fake_runner(model, optim_wrapper))


def test_student_drop_path_teacher_deterministic():
    encoder = image_encoder_cfg()
    encoder['drop_path_rate'] = 0.5
    model = build(image_encoder=encoder).train()
    images = torch.randn(4, 3, 32, 32)
    torch.manual_seed(1)
    first = model.image_encoder.encode_image(images)
    second = model.image_encoder.encode_image(images)
    assert not torch.allclose(first, second)  # stochastic depth in the student
    assert not model.teacher_image_encoder.training
    torch.testing.assert_close(
        model.teacher_image_encoder.encode_image(images),
        model.teacher_image_encoder.encode_image(images))


def test_momentum_fixed_cosine_and_batch_scaled():
    fixed = TeacherSchedule(momentum=0.996)
    assert {fixed.momentum_at(i, 1000) for i in (0, 500, 999)} == {0.996}
    cosine = TeacherSchedule(momentum=0.996, end_momentum=0.9999)
    assert cosine.momentum_at(0, 1000) == pytest.approx(0.996)
    assert cosine.momentum_at(500, 1000) == pytest.approx(0.996 + (0.9999 - 0.996) / 2)
    # m ** (B / B_ref), "How to Scale Your EMA": same horizon in samples.
    assert scale_momentum(0.996, 4096, 1024) == pytest.approx(0.996**4)
    assert scale_momentum(0.99, 256, 1024) == pytest.approx(0.99**0.25)
    # The model's step: per-process batch (3 captions) x world size (1) x accumulation (2).
    model = build(teacher=dict(momentum=0.996, base_batch_size=1024))
    optim_wrapper = OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1), accumulative_counts=2)
    for _ in range(2):
        log_vars = model.train_step(dict(inputs=batch(), data_samples=None), optim_wrapper)
    assert model._global_batch_size == 6
    assert log_vars['ema_momentum'] == pytest.approx(0.996**(6 / 1024))
    # The horizon in samples, B / (1 - m), stays about the same.
    assert 6 / (1 - log_vars['ema_momentum']) == pytest.approx(1024 / (1 - 0.996), rel=0.01)
    with pytest.raises(ValueError):
        TeacherSchedule(base_batch_size=0)


@pytest.mark.slow
@pytest.mark.parametrize(
    'path', ['configs/silc/pretrain_b16.py', 'configs/silc/pretrain_silc-siglip_b16.py'])
def test_b16_configs_choose_the_stability_options(path):
    cfg = Config.fromfile(path)
    hooks = {h['type']: h for h in cfg.custom_hooks}
    assert hooks['PerParameterGradClipHook']['max_norm'] == 3.0
    assert cfg.optim_wrapper.get('clip_grad') is None  # per-parameter clipping only
    assert hooks['FreezeLastLayerHook']['freeze_iters'] > 0
    assert cfg.model.image_encoder.drop_path_rate == 0.1
    ema = cfg.model.teacher
    assert ema.get('end_momentum') is None  # fixed momentum (the paper)
    assert ema['base_batch_size'] > 0
    assert math.isfinite(ema['momentum']) and 0 < ema['momentum'] < 1
