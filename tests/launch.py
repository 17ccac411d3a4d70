"""The command prefix the multi-process tests launch ``tools/train.py`` with."""
import sys
from typing import List


def torchrun(nproc: int) -> List[str]:
    """``python -m torch.distributed.run --standalone --nproc_per_node N``: the user's launcher.

    ``--standalone`` makes the launcher host the rendezvous store on a free port, so no rank's
    exit takes the store away from the others and no fixed port collides with another job.
    """
    return [
        sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node',
        str(nproc)
    ]
