"""How the multi-process tests start ranks: ``tools/train.py`` under the user's launcher, or a
test function on gloo processes spawned here."""
import socket
import sys
from typing import Callable, List

import torch.distributed as dist
import torch.multiprocessing as mp


def torchrun(nproc: int) -> List[str]:
    """``python -m torch.distributed.run --standalone --nproc_per_node N``: the user's launcher.

    ``--standalone`` makes the launcher host the rendezvous store on a free port, so no rank's
    exit takes the store away from the others and no fixed port collides with another job.
    """
    return [
        sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node',
        str(nproc)
    ]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _gloo_rank(rank, fn, args, port, world_size, results):
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world_size)
    try:
        results[rank] = fn(rank, *args)
    finally:
        dist.destroy_process_group()


def run_on_gloo_ranks(fn: Callable, world_size: int, *args) -> list:
    """``fn(rank, *args)`` on ``world_size`` spawned processes inside one gloo process group
    (127.0.0.1, a free port).

    Args:
        fn (callable): a module-level function (the spawned processes import it); what it
            returns must pickle.
        world_size (int): the number of ranks.
        *args: further arguments of ``fn``.

    Returns:
        list: what ``fn`` returned on each rank, in rank order.
    """
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(
            _gloo_rank,
            args=(fn, args, free_port(), world_size, results),
            nprocs=world_size,
            join=True)
        return [results[rank] for rank in range(world_size)]
