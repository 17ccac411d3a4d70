"""Differentiable cross-rank exchanges for the contrastive losses.

Everything else (``get_dist_info``, gathering without gradient, mean / max all-reduce) comes from
:mod:`mmengine.dist`, which also answers for a single process. The two functions here have no
MMEngine counterpart because their backward must route gradients to the rank that owns a tensor.

Gradient convention (the one of OpenCLIP): the gathering functions below are differentiable and
their backward *sums* the gradients of every rank into the rank that owns the tensor. When every
rank computes a loss whose average over ranks is the big-batch loss, the gradient a rank gets for
its own features is ``world_size`` times the big-batch gradient; DistributedDataParallel then
averages parameter gradients over ranks, which gives exactly the big-batch gradient.
"""
import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
from mmengine.dist import get_dist_info


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


def close_process_group() -> None:
    """Wait for every rank, then destroy the default process group, if one is set up.

    Called at the end of ``tools/train.py`` and ``tools/test.py``. A process that leaves the
    process group alive until interpreter shutdown can be aborted (SIGABRT) while a peer rank still
    talks to it, as seen with gloo when one rank finishes writing its checkpoint later than the
    other. Closing it explicitly after a barrier ends every rank cleanly.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    dist.destroy_process_group()
