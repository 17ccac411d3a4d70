"""The non-finite loss guard of ``NonFiniteGuardOptimWrapper`` under MMEngine's
``MMDistributedDataParallel`` (2 gloo processes): a non-finite loss on one rank makes every rank
skip (or raise) together, the replicas stay identical, and training goes on afterwards. Checked
for SILC and for a model that knows nothing about the guard."""
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.logging import MessageHub
from mmengine.model import MMDistributedDataParallel

from silc_seg.engine.optimizers import NonFiniteGuardOptimWrapper
from tests.test_foundation.toy_modules import ToyRegressor
from tests.test_models.test_silc import batch, build

pytestmark = pytest.mark.dist

WORLD_SIZE = 2
# (model, skip_nonfinite_steps)
SCENARIOS = [('silc', True), ('silc', False), ('toy', True)]


def worker(rank, port, results):
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=WORLD_SIZE)
    try:
        for name, skip in SCENARIOS:
            results[(name, skip, rank)] = scenario(rank, name, skip)
    finally:
        dist.destroy_process_group()


def silc_batches(rank):
    # SigLIP: rank 0's loss only sees rank 1's texts, so a broken image on rank 1 makes
    # the loss non-finite on rank 1 alone.
    broken = batch(seed=20 + rank)
    if rank == 1:
        broken['global_crops'][0, 0, 0, 0] = float('inf')
    return [dict(inputs=batch(seed=10 + rank)), dict(inputs=broken),
            dict(inputs=batch(seed=30 + rank))]


def toy_batches(rank):
    generator = torch.Generator().manual_seed(rank)

    def toy_batch():
        return dict(inputs=torch.randn(4, 4, generator=generator),
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
    wrapped = MMDistributedDataParallel(module=model)
    optim_wrapper = NonFiniteGuardOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), skip_nonfinite_steps=skip)
    hub = MessageHub.get_current_instance()
    hub.update_info('nonfinite_skips', 0)

    def params():
        return torch.cat([p.detach().flatten() for p in model.parameters()
                          if p.requires_grad])

    out = dict(start=params())
    wrapped.train_step(batches[0], optim_wrapper)
    out['after_first'] = params()
    hub.update_info('iter', 1)
    try:
        wrapped.train_step(batches[1], optim_wrapper)
        out['error'] = None
    except FloatingPointError as error:
        out['error'] = str(error)
    out['skipped'] = optim_wrapper.last_step_skipped
    if out['error']:
        return out
    out['after_skip'] = params()
    out['skips'] = hub.get_info('nonfinite_skips')
    if name == 'silc':
        out['center_finite'] = bool(torch.isfinite(model.distill_loss.center).all())
    wrapped.train_step(batches[2], optim_wrapper)
    out['after_third'] = params()
    return out


@pytest.fixture(scope='module')
def scenarios():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(worker, args=(port, results), nprocs=WORLD_SIZE, join=True)
        return {(name, skip): [results[(name, skip, rank)] for rank in range(WORLD_SIZE)]
                for name, skip in SCENARIOS}


@pytest.mark.parametrize('name', ['silc', 'toy'])
def test_all_ranks_skip_together_and_continue(scenarios, name):
    results = scenarios[(name, True)]
    for out in results:
        assert out['error'] is None and out['skipped'] and out['skips'] == 1
        assert not torch.equal(out['start'], out['after_first'])
        assert torch.equal(out['after_first'], out['after_skip'])
        assert out.get('center_finite', True)
        assert torch.isfinite(out['after_third']).all()
        assert not torch.equal(out['after_skip'], out['after_third'])
    # DDP kept the replicas identical through the skipped step.
    assert torch.equal(results[0]['after_skip'], results[1]['after_skip'])
    assert torch.equal(results[0]['after_third'], results[1]['after_third'])


def test_all_ranks_raise_together(scenarios):
    results = scenarios[('silc', False)]
    for rank, out in enumerate(results):
        assert 'iteration 1 on rank(s) [1] of 2' in out['error']
        assert f'on rank {rank})' in out['error']
    assert 'loss=inf' in results[1]['error'] or 'loss=nan' in results[1]['error']
    assert all(out['skipped'] for out in results)
