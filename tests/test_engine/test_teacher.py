"""The model's EMA teacher: momentum and temperature schedules, the update in ``train_step``
step by step, and inside an MMEngine Runner (logging, resume)."""
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner
from torch.utils.data import Dataset

from silc_seg.engine.optimizers import NonFiniteGuardOptimWrapper
from silc_seg.models.pretrainers import TeacherSchedule, ema_update
from silc_seg.registry import HOOKS, MODELS
from silc_seg.utils import torch_load_weights_only
from tests.registry import TEST_DATASETS
from tests.test_models.test_silc import BATCH, CONTEXT, VOCAB, batch, build, model_cfg


def expected_momentum(iteration, total, base=0.996, end=0.9999):
    return end - (end - base) * (1 + math.cos(math.pi * iteration / total)) / 2


def set_iteration(iteration, max_iters):
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', iteration)
    hub.update_info('max_iters', max_iters)
    return hub


@pytest.mark.slow
@pytest.mark.parametrize('accumulate', [1, 2])
def test_teacher_is_ema_of_student_after_each_optimizer_step(accumulate):
    model = build(teacher=dict(momentum=0.996, end_momentum=0.9999, temperature=0.04)).train()
    max_iters = 6
    optim_wrapper = OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.5), accumulative_counts=accumulate)
    hub = set_iteration(0, max_iters)
    hub.update_info('teacher_updates', 0)
    expected = {
        id(t): [p.clone() for p in t.parameters()]
        for _, t in model.student_teacher_pairs()
    }

    for it in range(max_iters):
        hub.update_info('iter', it)
        log_vars = model.train_step(dict(inputs=batch(seed=it), data_samples=None), optim_wrapper)
        stepped = (it + 1) % accumulate == 0
        assert hub.get_info('teacher_updates') == (it + 1) // accumulate
        assert ('ema_momentum' in log_vars) == stepped
        if stepped:
            momentum = expected_momentum(it, max_iters)
            assert log_vars['ema_momentum'] == pytest.approx(momentum, abs=1e-12)
            assert 0.996 <= momentum < 0.9999
            for student, teacher in model.student_teacher_pairs():
                expected[id(teacher)] = [
                    momentum * t + (1 - momentum) * s.detach()
                    for t, s in zip(expected[id(teacher)], student.parameters())
                ]
        for student, teacher in model.student_teacher_pairs():
            for e, t in zip(expected[id(teacher)], teacher.parameters()):
                torch.testing.assert_close(t, e, rtol=1e-6, atol=1e-7)
                assert t.grad is None
    # The teacher followed, but lags behind, the student.
    for student, teacher in model.student_teacher_pairs():
        assert not all(
            torch.equal(s, t) for s, t in zip(student.parameters(), teacher.parameters()))


def test_skipped_step_does_not_update_teacher():
    model = build().train()
    optim_wrapper = NonFiniteGuardOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.5), skip_nonfinite_steps=True)
    hub = set_iteration(0, 4)
    hub.update_info('teacher_updates', 0)
    with torch.no_grad():
        model.contrastive_loss.logit_scale.fill_(float('nan'))
    teacher_before = [p.clone() for p in model.teacher_image_encoder.parameters()]
    with pytest.warns(UserWarning):
        log_vars = model.train_step(dict(inputs=batch(), data_samples=None), optim_wrapper)
    assert hub.get_info('teacher_updates') == 0 and 'ema_momentum' not in log_vars
    for before, after in zip(teacher_before, model.teacher_image_encoder.parameters()):
        assert torch.equal(before, after)


def test_momentum_stays_below_one():
    with pytest.raises(ValueError, match='momentum'):
        TeacherSchedule(momentum=0.996, end_momentum=1.0)
    with pytest.raises(ValueError, match='momentum'):
        TeacherSchedule(momentum=1.0)
    schedule = TeacherSchedule(momentum=0.996, end_momentum=0.9999999)
    values = [schedule.momentum_at(i, 100000) for i in range(100000)]
    assert max(values) < 1.0 and values[0] == pytest.approx(0.996)
    assert all(a <= b for a, b in zip(values, values[1:]))
    # A schedule shorter than the run holds the end value, still checked at runtime.
    schedule = TeacherSchedule(momentum=0.99, end_momentum=0.999, momentum_iters=10)
    assert schedule.momentum_at(50, 100) == pytest.approx(0.999)
    schedule.end_momentum = 1.0
    with pytest.raises(RuntimeError, match='below 1.0'):
        schedule.momentum_at(50, 100)
    assert TeacherSchedule(momentum=0.99).momentum_at(7, 10) == 0.99


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


def test_teacher_block_needs_a_teacher():
    model = build(distill=False, teacher=dict(momentum=0.9))
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match='has no teacher'):
        model.train_step(dict(inputs=batch(), data_samples=None), optim_wrapper)
    with pytest.raises(ValueError, match='teacher.temperature is set'):
        build(distill=False, teacher=dict(temperature=0.05))
    with pytest.raises(ValueError, match='warmup_temperature'):
        TeacherSchedule(warmup_iters=10)
    with pytest.raises(ValueError, match='positive'):
        TeacherSchedule(warmup_temperature=0.0, warmup_iters=10)


@pytest.mark.parametrize('old', [
    dict(type='EMATeacherHook', momentum=0.996),
    dict(type='TeacherTempWarmupHook', warmup_iters=30000)
])
def test_old_hooks_name_the_teacher_block(old):
    with pytest.raises(ValueError, match=r'model\.teacher=dict'):
        HOOKS.build(old)
    with pytest.raises(ValueError, match='teacher block'):
        MODELS.build(dict(type='LocalGlobalDistillLoss', out_channels=4, teacher_temp=0.07))


def test_teacher_temp_warmup_values():
    schedule = TeacherSchedule(temperature=0.07, warmup_temperature=0.04, warmup_iters=10)
    for it, expected in [(0, 0.04), (5, 0.055), (10, 0.07), (60, 0.07)]:
        assert schedule.temperature_at(it) == pytest.approx(expected)
    # train_step passes the iteration's temperature to the loss (and logs it).
    model = build(teacher=dict(temperature=0.07, warmup_temperature=0.04, warmup_iters=10))
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.0))
    set_iteration(5, 100)
    log_vars = model.train_step(dict(inputs=batch(), data_samples=None), optim_wrapper)
    assert log_vars['teacher_temp'].item() == pytest.approx(0.055)
    MessageHub.get_current_instance().runtime_info.pop('iter')
    with pytest.raises(RuntimeError, match='needs the iteration'):
        model.train_step(dict(inputs=batch(), data_samples=None), optim_wrapper)


@TEST_DATASETS.register_module()
class TeacherHookTestSamples(Dataset):
    """Pre-made pretraining samples in the layout of PackSILCInputs."""

    def __len__(self):
        return 64

    def __getitem__(self, index):
        generator = torch.Generator().manual_seed(index)
        image = lambda size: torch.randint(
            0,
            256,
            (3, size, size),
            generator=generator,  # noqa
            dtype=torch.uint8)
        return dict(
            inputs=dict(
                global_crops=[image(32), image(32)],
                local_crops=[image(16)] * 3,
                text=torch.randint(1, VOCAB - 1, (CONTEXT, ), generator=generator)))


def runner_cfg(work_dir, max_iters, resume=None):
    teacher = dict(
        momentum=0.9, end_momentum=0.99, temperature=0.07, warmup_temperature=0.04, warmup_iters=2)
    return dict(
        model=model_cfg(data_preprocessor=dict(type='SILCDataPreprocessor'), teacher=teacher),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=dict(type='silc_test.TeacherHookTestSamples'),
            batch_size=BATCH,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='ExtendOptimizerStateHook')],
        model_wrapper_cfg=dict(type='mmseg.TrainStepDDP'),
        default_scope='mmseg',
        randomness=dict(seed=0),
        resume=resume is not None,
        load_from=resume)


@pytest.mark.slow
def test_teacher_in_runner_logs_and_resumes(tmp_path):
    runner = Runner.from_cfg(runner_cfg(tmp_path / 'a', max_iters=4))
    runner.train()
    hub = runner.message_hub
    assert hub.get_scalar('train/ema_momentum').current() == pytest.approx(
        expected_momentum(3, 4, 0.9, 0.99))
    assert hub.get_scalar('train/teacher_temp').current() == pytest.approx(0.07)
    for key in ('train/loss_contrastive', 'train/loss_distill', 'train/logit_scale',
                'train/center_norm'):
        assert key in hub.log_scalars, key
    assert hub.get_info('teacher_updates') == 4
    # An ordinary MMEngine checkpoint, loaded weights-only through silc-seg's loader.
    checkpoint = torch_load_weights_only(str(tmp_path / 'a' / 'iter_2.pth'))
    assert checkpoint['message_hub']['runtime_info']['teacher_updates'] == 2

    resumed = Runner.from_cfg(
        runner_cfg(tmp_path / 'b', 4, resume=str(tmp_path / 'a' / 'iter_2.pth')))
    resumed.train()
    assert resumed.message_hub.get_info('teacher_updates') == 4
    straight = runner.model.state_dict()
    for key, value in resumed.model.state_dict().items():
        assert torch.equal(value, straight[key]), key  # bit-identical


@pytest.mark.slow
@pytest.mark.parametrize('path', [
    'configs/silc/pretrain_b16.py', 'configs/silc/demo_silc_tiny.py',
    'configs/silc/demo_maskdistill_tiny.py', 'configs/silc/pretrain_maskclip_b16.py'
])
def test_pretraining_configs_build_their_teacher_schedule(path):
    cfg = Config.fromfile(path)
    TeacherSchedule(**cfg.model.teacher)  # valid
    assert cfg.model_wrapper_cfg.type == 'mmseg.TrainStepDDP'
    hooks = [hook['type'] for hook in cfg.custom_hooks]
    assert 'EMATeacherHook' not in hooks and 'TeacherTempWarmupHook' not in hooks
    assert 'ExtendOptimizerStateHook' in hooks
    assert 'teacher_temp' not in (cfg.model.get('distill_loss') or {})
