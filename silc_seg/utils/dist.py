"""Cross-rank helpers for the contrastive and distillation losses.

All functions are no-ops (identity / single-rank answers) when ``torch.distributed`` is not
initialized, so the losses run unchanged in a single process.

Gradient convention (the one of OpenCLIP): the gathering functions below are differentiable and
their backward *sums* the gradients of every rank into the rank that owns the tensor. When every
rank computes a loss whose average over ranks is the big-batch loss, the gradient a rank gets for
its own features is ``world_size`` times the big-batch gradient; DistributedDataParallel then
averages parameter gradients over ranks, which gives exactly the big-batch gradient.
"""
from typing import List, Tuple

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn


def get_dist_info() -> Tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` without an initialized process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` of every rank along dim 0, differentiably.

    Args:
        tensor (Tensor): ``(N, ...)``, the same shape on every rank.

    Returns:
        Tensor: ``(world_size * N, ...)``, rank ``r``'s rows at ``r * N``. Gradients flow back to
        every rank's input.
    """
    _, world_size = get_dist_info()
    if world_size == 1:
        return tensor
    return torch.cat(dist_nn.all_gather(tensor), dim=0)


@torch.no_grad()
def all_gather_no_grad(tensor: torch.Tensor) -> List[torch.Tensor]:
    """Every rank's ``tensor`` (a list indexed by rank), without gradient."""
    _, world_size = get_dist_info()
    if world_size == 1:
        return [tensor]
    gathered = [torch.empty_like(tensor) for _ in range(world_size)]
    dist.all_gather(gathered, tensor.contiguous())
    return gathered


@torch.no_grad()
def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of ``tensor`` over ranks (a new tensor; the input is left untouched)."""
    _, world_size = get_dist_info()
    if world_size == 1:
        return tensor.clone()
    reduced = tensor.clone()
    dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
    return reduced / world_size


@torch.no_grad()
def all_reduce_any(flag: bool, device: torch.device = torch.device('cpu')) -> bool:
    """True on every rank when ``flag`` is True on any rank (agree on a collective decision)."""
    _, world_size = get_dist_info()
    if world_size == 1:
        return bool(flag)
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


class _RingShift(torch.autograd.Function):
    """Send ``tensor`` to the right neighbour and receive the left neighbour's.

    Backward sends the gradient the opposite way round the ring, so it reaches the rank the
    tensor came from (OpenCLIP's ``NeighbourExchange``).
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, shift: int) -> torch.Tensor:
        ctx.shift = shift
        return _ring_send_recv(tensor, shift)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return _ring_send_recv(grad_output.contiguous(), -ctx.shift), None


def _ring_send_recv(tensor: torch.Tensor, shift: int) -> torch.Tensor:
    rank, world_size = get_dist_info()
    received = torch.empty_like(tensor)
    ops = [
        dist.P2POp(dist.isend, tensor.contiguous(), (rank + shift) % world_size),
        dist.P2POp(dist.irecv, received, (rank - shift) % world_size),
    ]
    for request in dist.batch_isend_irecv(ops):
        request.wait()
    return received


def ring_shift_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """The left neighbour's ``tensor`` (rank ``r`` receives rank ``r - 1``'s), differentiably.

    Calling it ``world_size - 1`` times on its own output visits every other rank's tensor while
    holding only one extra copy at a time (SigLIP's chunked exchange).
    """
    _, world_size = get_dist_info()
    if world_size == 1:
        return tensor
    return _RingShift.apply(tensor, 1)
