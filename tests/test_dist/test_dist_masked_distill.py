"""Masked self-distillation (Dong et al.'s MaskCLIP objective) under DistributedDataParallel,
2 gloo processes with B samples each == one process with the 2B batch, for every reduction the
objective has: the contrastive gathers, SILC's and the masked branch's all-reduced centers,
DDP's gradient average of the per-rank masked-distillation and MLM means (equal mask counts
per rank, as the masking guarantees per image and these captions have equal lengths)."""

import pytest
import torch
from mmengine.model import MMDistributedDataParallel

from silc_seg.registry import MODELS
from tests.launch import run_on_gloo_ranks
from tests.test_models.test_masked_self_distill import EOT, SOT, masked_cfg
from tests.test_models.test_silc import BATCH, CONTEXT, NUM_GLOBAL, NUM_LOCAL, VOCAB

pytestmark = pytest.mark.dist

WORLD_SIZE = 2
PATCHES = 16  # 32-px crops, patch 8


def rank_batch(rank):
    generator = torch.Generator().manual_seed(100 + rank)
    text = torch.randint(1, VOCAB - 2, (BATCH, CONTEXT), generator=generator)
    text[:, 0], text[:, -1] = SOT, EOT  # 6 content tokens in every caption
    return dict(
        global_crops=torch.randn(NUM_GLOBAL * BATCH, 3, 32, 32, generator=generator),
        local_crops=torch.randn(NUM_LOCAL * BATCH, 3, 16, 16, generator=generator),
        text=text,
        image_mask=torch.rand(NUM_GLOBAL * BATCH, PATCHES, generator=generator).argsort(1) < 8,
        text_mask=torch.rand(BATCH, CONTEXT,
                             generator=generator).mul((text != SOT) & (text != EOT)).argsort(
                                 1, descending=True).argsort(1) < 2)


def view_major_concat(parts, num_views):
    """Rank batches (view-major, B rows per view) -> the 2B batch (view-major)."""
    views = [part.chunk(num_views) for part in parts]
    return torch.cat([torch.cat([v[i] for v in views]) for i in range(num_views)])


def big_batch():
    parts = [rank_batch(r) for r in range(WORLD_SIZE)]
    return dict(
        global_crops=view_major_concat([p['global_crops'] for p in parts], NUM_GLOBAL),
        local_crops=view_major_concat([p['local_crops'] for p in parts], NUM_LOCAL),
        text=torch.cat([p['text'] for p in parts]),
        image_mask=view_major_concat([p['image_mask'] for p in parts], NUM_GLOBAL),
        text_mask=torch.cat([p['text_mask'] for p in parts]))


def step(model, forward, data):
    """One forward/backward with the given masks; losses, gradients and centers."""
    model.sample_image_mask = lambda *args, **kwargs: data['image_mask']
    model.sample_text_mask = lambda *args, **kwargs: data['text_mask']
    inputs = {
        k: data[k].double() if k.endswith('crops') else data[k]
        for k in ('global_crops', 'local_crops', 'text')
    }
    losses = forward(inputs)
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    total.backward()
    out = {k: v.detach() for k, v in losses.items() if k.startswith('loss')}
    out['grads'] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    out['mask_center'] = model.masked_distill_loss.center.clone()
    out['center'] = model.distill_loss.center.clone()
    return out


def build():
    torch.manual_seed(0)
    model = MODELS.build(masked_cfg(distill=True))
    model.init_weights()
    return model.double().train()


def worker(rank):
    model = build()
    wrapped = MMDistributedDataParallel(module=model)
    return step(model, lambda inputs: wrapped(inputs, mode='loss'), rank_batch(rank))


@pytest.fixture(scope='module')
def runs():
    model = build()
    single = step(model, lambda inputs: model(inputs, mode='loss'), big_batch())
    return single, run_on_gloo_ranks(worker, WORLD_SIZE)


def test_losses_average_to_the_big_batch_losses(runs):
    single, ranks = runs
    for name in ('loss_contrastive', 'loss_distill', 'loss_mask_distill', 'loss_mlm'):
        mean = sum(r[name] for r in ranks) / WORLD_SIZE
        torch.testing.assert_close(mean, single[name], rtol=1e-9, atol=1e-10, msg=name)


def test_centers_are_the_big_batch_centers(runs):
    single, ranks = runs
    for rank in ranks:
        torch.testing.assert_close(
            rank['mask_center'], single['mask_center'], rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(rank['center'], single['center'], rtol=1e-9, atol=1e-12)


def test_ddp_gradients_are_the_big_batch_gradients(runs):
    single, ranks = runs
    assert ranks[0]['grads'].keys() == single['grads'].keys()
    assert any(n.startswith('image_decoder.') for n in single['grads'])
    assert any(n.startswith('text_decoder.') for n in single['grads'])
    assert 'image_mask_token' in single['grads'] and 'text_mask_embedding' in single['grads']
    for name, grad in single['grads'].items():
        for rank in ranks:
            torch.testing.assert_close(
                rank['grads'][name],
                grad,
                rtol=1e-6,
                atol=1e-9,
                msg=lambda m, name=name: f'{name}: {m}')
