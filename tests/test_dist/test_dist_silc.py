"""SILC under SILCDistributedDataParallel (2 gloo processes): a non-finite loss on one rank
makes every rank skip (or raise) together, and training goes on afterwards."""
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from mmseg.registry import MODEL_WRAPPERS
from tests.test_models.test_silc import batch, build

WORLD_SIZE = 2
SCENARIOS = [(True, 'SILCDistributedDataParallel'), (False, 'SILCDistributedDataParallel'),
             (True, 'MMDistributedDataParallel')]


def worker(rank, port, results):
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=WORLD_SIZE)
    try:
        for skip, wrapper in SCENARIOS:
            results[(skip, wrapper, rank)] = scenario(rank, skip, wrapper)
    finally:
        dist.destroy_process_group()


def scenario(rank, skip, wrapper):
    """Three steps; the second one has an infinite pixel on rank 1."""
    torch.manual_seed(0)
    # SigLIP: rank 0's loss only sees rank 1's texts, so a broken image on rank 1 makes
    # the loss non-finite on rank 1 alone.
    model = build(contrastive_loss=dict(type='SigLipLoss'), skip_nonfinite_steps=skip)
    wrapped = MODEL_WRAPPERS.build(dict(type=wrapper, module=model))
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    hub = MessageHub.get_current_instance()
    hub.update_info('nonfinite_skips', 0)

    def params():
        return torch.cat([p.detach().flatten() for p in model.parameters()
                          if p.requires_grad])

    out = dict(start=params())
    wrapped.train_step(dict(inputs=batch(seed=10 + rank)), optim_wrapper)
    out['after_first'] = params()
    hub.update_info('iter', 1)
    broken = batch(seed=20 + rank)
    if rank == 1:
        broken['global_crops'][0, 0, 0, 0] = float('inf')
    try:
        wrapped.train_step(dict(inputs=broken), optim_wrapper)
        out['error'] = None
    except FloatingPointError as error:
        out['error'] = str(error)
    out['skipped'] = model.last_step_skipped
    if out['error']:
        return out
    out['after_skip'] = params()
    out['skips'] = hub.get_info('nonfinite_skips')
    out['center_finite'] = bool(torch.isfinite(model.distill_loss.center).all())
    wrapped.train_step(dict(inputs=batch(seed=30 + rank)), optim_wrapper)
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
        return {(skip, wrapper): [results[(skip, wrapper, rank)] for rank in range(WORLD_SIZE)]
                for skip, wrapper in SCENARIOS}


def test_all_ranks_skip_together_and_continue(scenarios):
    results = scenarios[(True, 'SILCDistributedDataParallel')]
    for out in results:
        assert out['error'] is None and out['skipped'] and out['skips'] == 1
        assert not torch.equal(out['start'], out['after_first'])
        assert torch.equal(out['after_first'], out['after_skip'])
        assert out['center_finite']
        assert torch.isfinite(out['after_third']).all()
        assert not torch.equal(out['after_skip'], out['after_third'])
    # DDP kept the replicas identical through the skipped step.
    assert torch.equal(results[0]['after_third'], results[1]['after_third'])


def test_all_ranks_raise_together(scenarios):
    results = scenarios[(False, 'SILCDistributedDataParallel')]
    assert 'iteration 1 (in another rank)' in results[0]['error']
    assert 'iteration 1 (in loss_' in results[1]['error']
    assert all(out['skipped'] for out in results)


def test_skipping_under_mmengine_wrapper_asks_for_silc_wrapper(scenarios):
    for out in scenarios[(True, 'MMDistributedDataParallel')]:
        assert "model_wrapper_cfg=dict(type='mmseg.SILCDistributedDataParallel')" in out['error']
