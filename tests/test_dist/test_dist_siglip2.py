"""The SigLIP 2 recipe model under DistributedDataParallel, 2 gloo processes with B samples
each == one process with the 2B batch, before and after the stage switch: the sigmoid loss
against every rank's texts (ring and all-gather), the decoder's token means (equal token counts
per rank, as these captions and regions have), the all-reduced centers of the distillation and
masked-prediction losses, and DDP's gradient average."""

import pytest
import torch
from mmengine.model import MMDistributedDataParallel

from silc_seg.registry import MODELS
from tests.launch import run_on_gloo_ranks
from tests.test_dist.test_dist_masked_distill import view_major_concat
from tests.test_models.test_siglip2 import siglip2_cfg
from tests.test_models.test_silc import BATCH, CONTEXT, NUM_GLOBAL, NUM_LOCAL, VOCAB

pytestmark = [pytest.mark.slow, pytest.mark.dist]

WORLD_SIZE = 2
PATCHES = 16  # 32-px crops, patch 8
REGION_TOKENS = 3
SCENARIOS = [(stage, impl) for stage in ('before', 'after') for impl in ('ring', 'gather')]
LOSSES = ('loss_contrastive', 'loss_caption', 'loss_aref', 'loss_gcap')
SWITCH_LOSSES = ('loss_distill', 'loss_mask_distill')


def rank_batch(rank):
    generator = torch.Generator().manual_seed(100 + rank)
    x0y0 = torch.rand(BATCH, 1, 2, generator=generator) * 0.5
    return dict(
        contrastive_crops=torch.randn(BATCH, 3, 32, 32, generator=generator),
        global_crops=torch.randn(NUM_GLOBAL * BATCH, 3, 32, 32, generator=generator),
        local_crops=torch.randn(NUM_LOCAL * BATCH, 3, 16, 16, generator=generator),
        # No padding id (0): every caption and region text has the same token count.
        text=torch.randint(1, VOCAB - 1, (BATCH, CONTEXT), generator=generator),
        region_text=torch.randint(1, VOCAB - 1, (BATCH, 1, REGION_TOKENS), generator=generator),
        region_boxes=torch.cat([x0y0, x0y0 + 0.4], dim=-1),
        region_valid=torch.tensor([[True], [False], [True]]),  # same count on every rank
        image_mask=torch.rand(NUM_GLOBAL * BATCH, PATCHES, generator=generator).argsort(1) < 8)


def big_batch():
    parts = [rank_batch(r) for r in range(WORLD_SIZE)]
    out = {
        key: torch.cat([p[key] for p in parts])
        for key in ('contrastive_crops', 'text', 'region_text', 'region_boxes', 'region_valid')
    }
    out['global_crops'] = view_major_concat([p['global_crops'] for p in parts], NUM_GLOBAL)
    out['local_crops'] = view_major_concat([p['local_crops'] for p in parts], NUM_LOCAL)
    out['image_mask'] = view_major_concat([p['image_mask'] for p in parts], NUM_GLOBAL)
    return out


def parallel_seed():
    """A seed whose draw of 2B parallel-prediction flags (the big batch's) mixes both modes in
    each rank's half: ranks then draw their halves from the same stream (see generator)."""
    for seed in range(100):
        flags = torch.rand(WORLD_SIZE * BATCH, generator=torch.Generator().manual_seed(seed)) < 0.5
        if all(0 < int(half.sum()) < BATCH for half in flags.chunk(WORLD_SIZE)):
            return seed
    raise AssertionError('no seed mixes both decoder modes')


def generator(rank=None):
    """The decoder's draws: the big batch reads the stream from its start, rank r from sample
    r * B on."""
    gen = torch.Generator().manual_seed(parallel_seed())
    if rank is not None:
        torch.rand(rank * BATCH, generator=gen)
    return gen


def build(impl):
    torch.manual_seed(0)
    model = MODELS.build(siglip2_cfg(contrastive_loss=dict(type='SigLipLoss', dist_impl=impl)))
    model.init_weights()
    return model.double().train()


def step(model, forward, data, stage, rank=None):
    """One forward/backward of the given stage; losses, gradients, centers, decoder modes."""
    if stage == 'after':
        model.start_self_distillation(0)  # teacher <- student, second-stage losses on
    model.sample_image_mask = lambda *args, **kwargs: data['image_mask']
    model._decoder_generator = lambda: generator(rank)
    inputs = {
        k: data[k].double() if k.endswith('crops') or k == 'region_boxes' else data[k]
        for k in data if k != 'image_mask'
    }
    losses = forward(inputs)
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    total.backward()
    out = {k: v.detach() for k, v in losses.items() if k.startswith('loss')}
    out['parallel_share'] = float(losses['parallel_share'])
    out['grads'] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    out['center'] = model.distill_loss.center.clone()
    out['mask_center'] = model.masked_distill_loss.center.clone()
    return out


def worker(rank):
    out = {}
    for stage, impl in SCENARIOS:
        model = build(impl)
        # The recipe's DDP setting: the second stage's heads have no gradient before it.
        wrapped = MMDistributedDataParallel(module=model, find_unused_parameters=True)
        out[(stage, impl)] = step(model, lambda inputs: wrapped(inputs, mode='loss'),
                                  rank_batch(rank), stage, rank)
    return out


@pytest.fixture(scope='module')
def runs():
    single = {}
    for stage, impl in SCENARIOS:
        model = build(impl)
        single[(stage, impl)] = step(model, lambda inputs: model(inputs, mode='loss'), big_batch(),
                                     stage)
    ranks = run_on_gloo_ranks(worker, WORLD_SIZE)
    return {key: (single[key], [rank[key] for rank in ranks]) for key in SCENARIOS}


@pytest.mark.parametrize('stage,impl', SCENARIOS)
def test_losses_average_to_the_big_batch_losses(runs, stage, impl):
    single, ranks = runs[(stage, impl)]
    names = LOSSES + (SWITCH_LOSSES if stage == 'after' else ())
    assert set(single) & {'loss_distill', 'loss_mask_distill'} == set(names) & set(SWITCH_LOSSES)
    for name in names:
        mean = sum(r[name] for r in ranks) / WORLD_SIZE
        torch.testing.assert_close(mean, single[name], rtol=1e-9, atol=1e-12, msg=name)
    # The decoder trained both ways on each rank, and as the big batch did, sample by sample.
    assert all(0 < r['parallel_share'] < 1 for r in ranks)
    assert sum(r['parallel_share']
               for r in ranks) / WORLD_SIZE == pytest.approx(single['parallel_share'])


@pytest.mark.parametrize('impl', ['ring', 'gather'])
def test_centers_after_the_switch_are_the_big_batch_centers(runs, impl):
    single, ranks = runs[('after', impl)]
    before, _ = runs[('before', impl)]
    assert not torch.equal(single['center'], before['center'])  # the step moved them
    for rank in ranks:
        torch.testing.assert_close(rank['center'], single['center'], rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(
            rank['mask_center'], single['mask_center'], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize('stage,impl', SCENARIOS)
def test_ddp_gradients_are_the_big_batch_gradients(runs, stage, impl):
    single, ranks = runs[(stage, impl)]
    grads = single['grads']
    assert ranks[0]['grads'].keys() == grads.keys()
    assert any(n.startswith('caption_decoder.') for n in grads)
    assert 'contrastive_loss.logit_bias' in grads
    heads = ('distill_head.', 'masked_head.', 'image_mask_token')
    if stage == 'after':
        assert all(any(n.startswith(h) for n in grads) for h in heads)
    else:
        assert not any(n.startswith(heads) for n in grads)
    for name, grad in grads.items():
        for rank in ranks:
            torch.testing.assert_close(
                rank['grads'][name],
                grad,
                rtol=1e-6,
                atol=1e-9,
                msg=lambda m, name=name: f'{name}: {m}')
