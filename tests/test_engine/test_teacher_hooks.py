"""EMATeacherHook and TeacherTempWarmupHook, step by step and inside an MMEngine Runner."""
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner
from torch.utils.data import Dataset

from silc_seg.engine.hooks import EMATeacherHook, TeacherTempWarmupHook
from silc_seg.engine.hooks.ema_teacher_hook import ema_update
from silc_seg.engine.optimizers import NonFiniteGuardOptimWrapper
from silc_seg.registry import HOOKS
from silc_seg.utils import torch_load_weights_only
from tests.registry import TEST_DATASETS
from tests.test_models.test_silc import BATCH, CONTEXT, VOCAB, batch, build, model_cfg


def fake_runner(model, optim_wrapper, max_iters):
    return SimpleNamespace(model=model, optim_wrapper=optim_wrapper, max_iters=max_iters,
                           iter=0, message_hub=MessageHub.get_instance('test_teacher_hooks'))


def expected_momentum(iteration, total, base=0.996, end=0.9999):
    return end - (end - base) * (1 + math.cos(math.pi * iteration / total)) / 2


@pytest.mark.slow
@pytest.mark.parametrize('accumulate', [1, 2])
def test_teacher_is_ema_of_student_after_each_optimizer_step(accumulate):
    model = build().train()
    max_iters = 6
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5),
                                 accumulative_counts=accumulate)
    runner = fake_runner(model, optim_wrapper, max_iters)
    hook = EMATeacherHook(momentum=0.996, end_momentum=0.9999)
    hook.before_train(runner)
    expected = {id(t): [p.clone() for p in t.parameters()]
                for _, t in model.student_teacher_pairs()}

    for it in range(max_iters):
        runner.iter = it
        model.train_step(dict(inputs=batch(seed=it), data_samples=None), optim_wrapper)
        hook.after_train_iter(runner, it)
        stepped = (it + 1) % accumulate == 0
        assert hook.num_updates == (it + 1) // accumulate
        if stepped:
            logged = runner.message_hub.get_scalar('train/ema_momentum').current()
            momentum = expected_momentum(it, max_iters)
            assert logged == pytest.approx(momentum, abs=1e-12)
            assert 0.996 <= momentum < 0.9999
            for student, teacher in model.student_teacher_pairs():
                expected[id(teacher)] = [
                    momentum * t + (1 - momentum) * s.detach()
                    for t, s in zip(expected[id(teacher)], student.parameters())]
        for student, teacher in model.student_teacher_pairs():
            for e, t in zip(expected[id(teacher)], teacher.parameters()):
                torch.testing.assert_close(t, e, rtol=1e-6, atol=1e-7)
                assert t.grad is None
    # The teacher followed, but lags behind, the student.
    for student, teacher in model.student_teacher_pairs():
        assert not all(torch.equal(s, t)
                       for s, t in zip(student.parameters(), teacher.parameters()))


def test_skipped_step_does_not_update_teacher():
    model = build().train()
    optim_wrapper = NonFiniteGuardOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.5), skip_nonfinite_steps=True)
    runner = fake_runner(model, optim_wrapper, 4)
    hook = EMATeacherHook()
    with torch.no_grad():
        model.contrastive_loss.logit_scale.fill_(float('nan'))
    teacher_before = [p.clone() for p in model.teacher_image_encoder.parameters()]
    with pytest.warns(UserWarning):
        model.train_step(dict(inputs=batch(), data_samples=None), optim_wrapper)
    hook.after_train_iter(runner, 0)
    assert hook.num_updates == 0
    for before, after in zip(teacher_before, model.teacher_image_encoder.parameters()):
        assert torch.equal(before, after)


def test_momentum_stays_below_one():
    with pytest.raises(ValueError, match='momentum'):
        EMATeacherHook(momentum=0.996, end_momentum=1.0)
    with pytest.raises(ValueError, match='momentum'):
        EMATeacherHook(momentum=1.0)
    hook = EMATeacherHook(momentum=0.996, end_momentum=0.9999999)
    values = [hook.momentum_at(i, 100000) for i in range(100000)]
    assert max(values) < 1.0 and values[0] == pytest.approx(0.996)
    assert all(a <= b for a, b in zip(values, values[1:]))
    # A schedule shorter than the run holds the end value, still checked at runtime.
    hook = EMATeacherHook(momentum=0.99, end_momentum=0.999, total_iters=10)
    assert hook.momentum_at(50, 100) == pytest.approx(0.999)
    hook.end_momentum = 1.0
    with pytest.raises(RuntimeError, match='below 1.0'):
        hook.momentum_at(50, 100)
    assert EMATeacherHook(momentum=0.99).momentum_at(7, 10) == 0.99


def test_ema_update_copies_buffers():
    torch.manual_seed(0)
    student = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    teacher = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    student(torch.randn(8, 3))  # moves the running statistics
    t0, s0 = teacher[0].weight.clone(), student[0].weight.clone()
    ema_update(teacher, student, 0.9)
    torch.testing.assert_close(teacher[0].weight, 0.9 * t0 + 0.1 * s0)
    assert torch.equal(teacher[1].running_mean, student[1].running_mean)
    assert teacher[1].num_batches_tracked == 1


def test_hooks_need_a_teacher():
    model = build(distill=False)
    runner = fake_runner(model, None, 4)
    with pytest.raises(RuntimeError, match='EMA teacher'):
        EMATeacherHook().before_train(runner)
    with pytest.raises(RuntimeError, match='distill_loss'):
        TeacherTempWarmupHook().before_train_iter(runner, 0)


def test_teacher_temp_warmup_values():
    model = build()
    runner = fake_runner(model, None, 100)
    hook = HOOKS.build(dict(type='TeacherTempWarmupHook', warmup_teacher_temp=0.04,
                            teacher_temp=0.07, warmup_iters=10))
    for it, expected in [(0, 0.04), (5, 0.055), (10, 0.07), (60, 0.07)]:
        runner.iter = it
        hook.before_train_iter(runner, it)
        assert model.distill_loss.teacher_temp == pytest.approx(expected)
        assert runner.message_hub.get_scalar('train/teacher_temp').current() == pytest.approx(
            expected)
    with pytest.raises(ValueError):
        TeacherTempWarmupHook(warmup_teacher_temp=0.0)


@TEST_DATASETS.register_module()
class TeacherHookTestSamples(Dataset):
    """Pre-made pretraining samples in the layout of PackSILCInputs."""

    def __len__(self):
        return 64

    def __getitem__(self, index):
        generator = torch.Generator().manual_seed(index)
        image = lambda size: torch.randint(0, 256, (3, size, size), generator=generator,  # noqa
                                           dtype=torch.uint8)
        return dict(
            inputs=dict(global_crops=[image(32), image(32)], local_crops=[image(16)] * 3,
                        text=torch.randint(1, VOCAB - 1, (CONTEXT, ), generator=generator)))


def runner_cfg(work_dir, max_iters, resume=None):
    return dict(
        model=model_cfg(data_preprocessor=dict(type='SILCDataPreprocessor')),
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=dict(type='silc_test.TeacherHookTestSamples'),
                              batch_size=BATCH, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='EMATeacherHook', momentum=0.9, end_momentum=0.99),
                      dict(type='TeacherTempWarmupHook', warmup_iters=2)],
        default_scope='mmseg', randomness=dict(seed=0), resume=resume is not None,
        load_from=resume)


@pytest.mark.slow
def test_hooks_in_runner_log_and_resume(tmp_path):
    runner = Runner.from_cfg(runner_cfg(tmp_path / 'a', max_iters=4))
    runner.train()
    hub = runner.message_hub
    assert hub.get_scalar('train/ema_momentum').current() == pytest.approx(
        expected_momentum(3, 4, 0.9, 0.99))
    assert hub.get_scalar('train/teacher_temp').current() == pytest.approx(0.07)
    for key in ('train/loss_contrastive', 'train/loss_distill', 'train/logit_scale',
                'train/center_norm'):
        assert key in hub.log_scalars, key
    ema_hook = next(h for h in runner.hooks if isinstance(h, EMATeacherHook))
    assert ema_hook.num_updates == 4
    # An ordinary MMEngine checkpoint, loaded weights-only through silc-seg's loader.
    checkpoint = torch_load_weights_only(str(tmp_path / 'a' / 'iter_2.pth'))
    assert checkpoint['ema_teacher'] == dict(num_updates=2)

    resumed = Runner.from_cfg(
        runner_cfg(tmp_path / 'b', 4, resume=str(tmp_path / 'a' / 'iter_2.pth')))
    resumed.train()
    resumed_hook = next(h for h in resumed.hooks if isinstance(h, EMATeacherHook))
    assert resumed_hook.num_updates == 4
    straight = runner.model.state_dict()
    for key, value in resumed.model.state_dict().items():
        torch.testing.assert_close(value, straight[key], rtol=1e-5, atol=1e-6, msg=key)
