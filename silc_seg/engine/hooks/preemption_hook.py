"""Save one checkpoint and stop when the scheduler announces a preemption (SIGTERM, SIGUSR1)."""
import logging
import os
import signal
import threading
from typing import Optional, Sequence

import torch
from mmengine.dataset import InfiniteSampler
from mmengine.dist import all_reduce, barrier, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import BaseLoop, IterBasedTrainLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator

from silc_seg.engine.checkpointing import PREEMPTED_EXIT_CODE
from silc_seg.registry import HOOKS
from silc_seg.utils.dist import close_process_group
from .safe_checkpoint_hook import SafeCheckpointHook
from .stream_resume_hook import _stop_workers


class _IgnoreSignalsInWorkers:
    """A dataloader ``worker_init_fn``: the worker ignores ``signals`` unless its parent (the
    training process) sends them, then ``init_fn`` runs.

    A scheduler signals the whole process group (torchrun: ``killpg`` of each worker), so the
    dataloader workers get the signal too; dying of it, they would stop the run with a DataLoader
    error before the checkpoint is saved. The training process still stops them with SIGTERM
    (``multiprocessing`` at exit), as PyTorch's own worker handler allows.
    """

    def __init__(self, init_fn, signals) -> None:
        self.init_fn = init_fn
        self.signals = list(signals)

    def __call__(self, worker_id: int) -> None:
        # Blocked signals wait for sigwaitinfo, which tells who sent them.
        signal.pthread_sigmask(signal.SIG_BLOCK, self.signals)
        threading.Thread(
            target=_obey_only_parent, args=(self.signals, os.getppid()), daemon=True).start()
        if self.init_fn is not None:
            self.init_fn(worker_id)


def _obey_only_parent(signals, parent: int) -> None:
    while True:
        info = signal.sigwaitinfo(signals)
        if info.si_pid == parent:
            os._exit(0)


@HOOKS.register_module()
class PreemptionHook(Hook):
    """On a preemption signal: finish the step, save one checkpoint on all ranks, exit.

    The signal handler only records the signal. After every ``interval``-th iteration all ranks
    combine what they received (a one-number all-reduce), so that they agree on the iteration
    even when only one rank was signalled; they then save through the runner's
    :class:`SafeCheckpointHook` (every hook's ``before_save_checkpoint`` runs, e.g.
    StreamResumeHook's stream positions), wait for rank 0 to finish writing, end the loop
    (``after_train`` / ``after_run`` hooks run) and exit with ``exit_code`` (default 75,
    ``PREEMPTED_EXIT_CODE``; tools/slurm_train.sh requeues on it). ``--resume`` then continues
    exactly where the run stopped. An epoch-based loop exits right after the save, and resuming
    restarts that epoch.

    Dataloader workers ignore the signals (a scheduler signals the whole process group); the
    train loop's workers are restarted once for that in ``before_run``.

    The checkpoint goes through ``SafeCheckpointHook.save_now``, the one place that decides what
    a checkpoint holds, so a runner with another strategy (FSDP) reuses this hook unchanged.

    Args:
        signals (Sequence[str]): Signal names to handle. Defaults to ('SIGTERM', 'SIGUSR1').
        exit_code (int): Exit status after the save. Defaults to 75 (EX_TEMPFAIL).
        interval (int): Check (and all-reduce) every ``interval`` iterations. Defaults to 1.
    """

    priority = 'LOWEST'  # after every other after_train_iter (checkpoint hook: VERY_LOW)

    def __init__(self,
                 signals: Sequence[str] = ('SIGTERM', 'SIGUSR1'),
                 exit_code: int = PREEMPTED_EXIT_CODE,
                 interval: int = 1) -> None:
        if isinstance(signals, str):
            signals = [signals]
        unknown = [name for name in signals if name not in signal.Signals.__members__]
        if unknown or not signals:
            raise ValueError(f'PreemptionHook: unknown signal name(s) {unknown or signals}; use '
                             'names such as SIGTERM, SIGUSR1, SIGUSR2')
        if interval < 1:
            raise ValueError(f'PreemptionHook: interval must be >= 1, got {interval}')
        self.signals = [signal.Signals[name] for name in signals]
        self.exit_code = exit_code
        self.interval = interval
        self.received = 0  # the signal number this process received (0: none)
        self.preempted = 0  # the signal number all ranks agreed to stop on
        self._previous_handlers = {}
        self._checkpoint_hook: Optional[SafeCheckpointHook] = None

    def _on_signal(self, signum, frame) -> None:
        self.received = signum

    def before_run(self, runner) -> None:
        # The train loop's workers started when it was built: restart them ignoring the signals,
        # before any batch is trained (and before StreamResumeHook positions a stream).
        loop = runner._train_loop  # not runner.train_loop: that would build it in tools/test.py
        if not isinstance(loop, BaseLoop) or loop.dataloader.num_workers == 0:
            return
        loader = loop.dataloader
        if isinstance(loader.worker_init_fn, _IgnoreSignalsInWorkers):
            return
        loader.worker_init_fn = _IgnoreSignalsInWorkers(loader.worker_init_fn, self.signals)
        if isinstance(loop, IterBasedTrainLoop):
            _stop_workers(loop)
            if isinstance(loader.sampler, InfiniteSampler):
                # Its index generator is shared by iterators: start it again from the top.
                loader.sampler.indices = loader.sampler._indices_of_rank()
            state = torch.get_rng_state()  # a new iterator draws a seed: the run must not shift
            loop.dataloader_iterator = _InfiniteDataloaderIterator(loader)
            torch.set_rng_state(state)

    def before_train(self, runner) -> None:
        # Not before_run: tools/test.py runs these hooks too, and must stop on a signal.
        hooks = [hook for hook in runner.hooks if isinstance(hook, SafeCheckpointHook)]
        if not hooks:
            raise TypeError('PreemptionHook saves through SafeCheckpointHook: set '
                            "default_hooks.checkpoint=dict(type='SafeCheckpointHook', ...)")
        self._checkpoint_hook = hooks[0]
        if threading.current_thread() is not threading.main_thread():
            print_log(
                'PreemptionHook: not in the main thread, no signal handlers installed',
                logger='current',
                level=logging.WARNING)
            return
        for sig in self.signals:
            self._previous_handlers[sig] = signal.signal(sig, self._on_signal)
        names = ', '.join(sig.name for sig in self.signals)
        print_log(
            f'PreemptionHook: {names} to rank {get_rank()} pid {os.getpid()} saves a '
            f'checkpoint after the current step and exits with code {self.exit_code}',
            logger='current')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.preempted or (runner.iter + 1) % self.interval:
            return
        flag = torch.tensor([self.received], dtype=torch.long)
        if get_world_size() > 1:
            all_reduce(flag, op='max')
        if not int(flag):
            return
        self.preempted = int(flag)
        name = signal.Signals(self.preempted).name
        print_log(
            f'Preemption: {name} received (by at least one rank); saving a checkpoint '
            f'after iteration {runner.iter + 1}',
            logger='current',
            level=logging.WARNING)
        path = self._checkpoint_hook.save_now(runner)
        barrier()  # no rank exits (and gets the job torn down) while rank 0 still writes
        print_log(
            f'Preemption: saved {path}; resume with --resume',
            logger='current',
            level=logging.WARNING)
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop):
            loop.stop_training = True  # the loop ends; after_train and after_run hooks run
        else:
            self._exit()

    def after_train(self, runner) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers = {}

    def after_run(self, runner) -> None:
        if self.preempted:
            self._exit()

    def _exit(self) -> None:
        print_log(
            f'Preemption: exiting with code {self.exit_code}',
            logger='current',
            level=logging.WARNING)
        close_process_group()
        raise SystemExit(self.exit_code)
