"""SILC's train_step and the non-finite loss guard of ``NonFiniteGuardOptimWrapper`` under
``TrainStepDDP`` (2 gloo processes): a non-finite loss on one rank makes every rank skip (or
raise) together, the replicas, teachers included, stay identical, the teacher follows the student
on applied steps only, and training goes on afterwards. Checked for SILC and for a model that
knows nothing about the guard (stepped as by MMEngine's wrapper)."""

import pytest
import torch
from mmengine.logging import MessageHub

from silc_seg.engine.optimizers import NonFiniteGuardOptimWrapper
from silc_seg.models.pretrainers import TrainStepDDP
from tests.launch import run_on_gloo_ranks
from tests.test_foundation.toy_modules import ToyRegressor
from tests.test_models.test_silc import batch, build

pytestmark = pytest.mark.dist

WORLD_SIZE = 2
# (model, skip_nonfinite_steps)
SCENARIOS = [('silc', True), ('silc', False), ('toy', True)]


def worker(rank):
    return {(name, skip): scenario(rank, name, skip) for name, skip in SCENARIOS}


def silc_batches(rank):
    # SigLIP: rank 0's loss only sees rank 1's texts, so a broken image on rank 1 makes
    # the loss non-finite on rank 1 alone.
    broken = batch(seed=20 + rank)
    if rank == 1:
        broken['global_crops'][0, 0, 0, 0] = float('inf')
    return [
        dict(inputs=batch(seed=10 + rank)),
        dict(inputs=broken),
        dict(inputs=batch(seed=30 + rank))
    ]


def toy_batches(rank):
    generator = torch.Generator().manual_seed(rank)

    def toy_batch():
        return dict(
            inputs=torch.randn(4, 4, generator=generator),
            targets=torch.randn(4, generator=generator))

    batches = [toy_batch() for _ in range(3)]
    if rank == 1:
        batches[1]['targets'][0] = float('nan')
    return batches


def scenario(rank, name, skip):
    """Three steps; the second one has a non-finite loss on rank 1 only."""
    torch.manual_seed(0)
    if name == 'silc':
        model = build(contrastive_loss=dict(type='SigLipLoss'))
        batches = silc_batches(rank)
    else:
        model = ToyRegressor()
        batches = toy_batches(rank)
    wrapped = TrainStepDDP(module=model)
    optim_wrapper = NonFiniteGuardOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), skip_nonfinite_steps=skip)
    hub = MessageHub.get_current_instance()
    hub.update_info('nonfinite_skips', 0)

    hub.update_info('iter', 0)
    hub.update_info('teacher_updates', 0)

    def params(trainable=True):
        return torch.cat(
            [p.detach().flatten() for p in model.parameters() if p.requires_grad == trainable])

    def snapshot(key):
        out[key] = params()
        if name == 'silc':
            out[key + '_teacher'] = params(trainable=False)

    out = {}
    snapshot('start')
    wrapped.train_step(batches[0], optim_wrapper)
    snapshot('after_first')
    hub.update_info('iter', 1)
    try:
        log_vars = wrapped.train_step(batches[1], optim_wrapper)
        out['error'] = None
    except FloatingPointError as error:
        out['error'] = str(error)
    if out['error']:
        return out
    out['skipped'] = 'ema_momentum' not in log_vars
    snapshot('after_skip')
    out['skips'] = hub.get_info('nonfinite_skips')
    out['teacher_updates'] = hub.get_info('teacher_updates')
    if name == 'silc':
        out['center_finite'] = bool(torch.isfinite(model.distill_loss.center).all())
    wrapped.train_step(batches[2], optim_wrapper)
    snapshot('after_third')
    return out


@pytest.fixture(scope='module')
def scenarios():
    ranks = run_on_gloo_ranks(worker, WORLD_SIZE)
    return {key: [rank[key] for rank in ranks] for key in SCENARIOS}


@pytest.mark.parametrize('name', ['silc', 'toy'])
def test_all_ranks_skip_together_and_continue(scenarios, name):
    results = scenarios[(name, True)]
    keys = ['', '_teacher'] if name == 'silc' else ['']
    for out in results:
        assert out['error'] is None and out['skips'] == 1
        for key in keys:  # the student, and SILC's teacher (updated after the first step only)
            assert not torch.equal(out['start' + key], out['after_first' + key])
            assert torch.equal(out['after_first' + key], out['after_skip' + key])
            assert torch.isfinite(out['after_third' + key]).all()
            assert not torch.equal(out['after_skip' + key], out['after_third' + key])
        assert out.get('center_finite', True)
        if name == 'silc':
            assert out['skipped'] and out['teacher_updates'] == 1
    # DDP kept the replicas (and the teachers) identical through the skipped step.
    for key in keys:
        for stage in ('after_first', 'after_skip', 'after_third'):
            assert torch.equal(results[0][stage + key], results[1][stage + key]), stage + key


def test_all_ranks_raise_together(scenarios):
    results = scenarios[('silc', False)]
    for rank, out in enumerate(results):
        assert 'iteration 1 on rank(s) [1] of 2' in out['error']
        assert f'on rank {rank})' in out['error']
    assert 'loss=inf' in results[1]['error'] or 'loss=nan' in results[1]['error']
