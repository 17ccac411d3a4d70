"""Two gloo processes with B samples each == one process with 2B samples.

Convention checked (OpenCLIP's, see ``silc_seg.utils.dist``): the mean over ranks of the loss
equals the big-batch loss; a rank's gradient for its own features is ``world_size`` times the
big-batch gradient (DistributedDataParallel divides parameter gradients by ``world_size``); the
mean over ranks of the gradients of the loss parameters (logit scale, bias) equals the big-batch
gradient.
"""

import pytest
import torch
import torch.nn.functional as F

from silc_seg.models.losses import ClipContrastiveLoss, LocalGlobalDistillLoss, SigLipLoss
from tests.launch import run_on_gloo_ranks

pytestmark = pytest.mark.dist

WORLD_SIZE = 2
BATCH = 3
DIM = 8
PROTOS = 10
NUM_GLOBAL, NUM_LOCAL = 2, 3

CASES = {
    'clip': lambda: ClipContrastiveLoss(),
    'clip_local_loss': lambda: ClipContrastiveLoss(local_loss=True),
    'siglip_ring': lambda: SigLipLoss(dist_impl='ring'),
    'siglip_gather': lambda: SigLipLoss(dist_impl='gather'),
}


def global_batch():
    """Features of the whole (2B) batch, the same in every process."""
    generator = torch.Generator().manual_seed(0)
    num = WORLD_SIZE * BATCH
    image = F.normalize(torch.randn(num, DIM, generator=generator, dtype=torch.float64), dim=-1)
    text = F.normalize(torch.randn(num, DIM, generator=generator, dtype=torch.float64), dim=-1)
    student = torch.randn(
        NUM_GLOBAL + NUM_LOCAL, num, PROTOS, generator=generator, dtype=torch.float64)
    teacher = torch.randn(NUM_GLOBAL, num, PROTOS, generator=generator, dtype=torch.float64)
    return image, text, student, teacher


def contrastive_step(loss_fn, image, text):
    """Loss value and gradients (image, text, logit scale, logit bias) of one call."""
    image, text = image.clone().requires_grad_(), text.clone().requires_grad_()
    loss = loss_fn(image, text)
    loss.backward()
    bias = getattr(loss_fn, 'logit_bias', None)
    return dict(
        loss=loss.detach(),
        image=image.grad,
        text=text.grad,
        scale=loss_fn.logit_scale.grad.clone(),
        bias=None if bias is None else bias.grad.clone())


def distill_step(student, teacher, batch_size):
    loss_fn = LocalGlobalDistillLoss(PROTOS).double()
    loss = loss_fn(student.reshape(-1, PROTOS), teacher.reshape(-1, PROTOS), batch_size, 0.05)
    return dict(loss=loss.detach(), center=loss_fn.center.clone())


def worker(rank):
    image, text, student, teacher = global_batch()
    rows = slice(rank * BATCH, (rank + 1) * BATCH)
    out = {
        name: contrastive_step(make().double(), image[rows], text[rows])
        for name, make in CASES.items()
    }
    out['distill'] = distill_step(student[:, rows], teacher[:, rows], BATCH)
    return out


@pytest.fixture(scope='module')
def rank_results():
    return run_on_gloo_ranks(worker, WORLD_SIZE)


@pytest.mark.parametrize('case', list(CASES))
def test_contrastive_two_ranks_equal_big_batch(case, rank_results):
    image, text, _, _ = global_batch()
    single = contrastive_step(CASES[case]().double(), image, text)
    per_rank = [result[case] for result in rank_results]

    mean_loss = sum(r['loss'] for r in per_rank) / WORLD_SIZE
    torch.testing.assert_close(mean_loss, single['loss'], rtol=1e-12, atol=1e-12)
    if case == 'clip':  # the full logit matrix on every rank: every rank has the global value
        for r in per_rank:
            torch.testing.assert_close(r['loss'], single['loss'], rtol=1e-12, atol=1e-12)
    for key in ('image', 'text'):
        gathered = torch.cat([r[key] for r in per_rank]) / WORLD_SIZE
        torch.testing.assert_close(gathered, single[key], rtol=1e-10, atol=1e-12)
    for key in ('scale', 'bias'):
        if single[key] is None:
            continue
        mean_grad = sum(r[key] for r in per_rank) / WORLD_SIZE
        torch.testing.assert_close(mean_grad, single[key], rtol=1e-10, atol=1e-12)


def test_distill_center_update_equals_big_batch(rank_results):
    _, _, student, teacher = global_batch()
    single = distill_step(student, teacher, WORLD_SIZE * BATCH)
    for result in rank_results:
        torch.testing.assert_close(
            result['distill']['center'], single['center'], rtol=0, atol=1e-12)
    mean_loss = sum(r['distill']['loss'] for r in rank_results) / WORLD_SIZE
    torch.testing.assert_close(mean_loss, single['loss'], rtol=1e-12, atol=1e-12)
