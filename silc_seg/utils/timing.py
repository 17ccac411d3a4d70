"""Wall-clock timing of device work: the one way the benchmark tools time."""
import time
from typing import Callable, Union

import torch

Device = Union[torch.device, str]


def synchronize(device: Device) -> None:
    """Wait for the device's queued work (CUDA); a no-op on the CPU, which runs eagerly."""
    device = torch.device(device)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


class Stopwatch:
    """Accumulated wall time of wrapped calls, the device synchronised around each.

    Args:
        device (torch.device | str): where the timed work runs. Defaults to the CPU.
    """

    def __init__(self, device: Device = 'cpu'):
        self.device = torch.device(device)
        self.elapsed = 0.0

    def wrap(self, fn: Callable) -> Callable:
        """``fn`` with each call's time added to :attr:`elapsed`; returns what ``fn`` returns."""

        def timed(*args, **kwargs):
            synchronize(self.device)
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            synchronize(self.device)
            self.elapsed += time.perf_counter() - start
            return out

        return timed

    def take(self) -> float:
        """Seconds accumulated since the last take; restarts the count."""
        elapsed, self.elapsed = self.elapsed, 0.0
        return elapsed


def time_call(fn: Callable[[], object], device: Device = 'cpu') -> float:
    """Seconds ``fn()`` takes, the device synchronised before and after it."""
    stopwatch = Stopwatch(device)
    stopwatch.wrap(fn)()
    return stopwatch.take()
