"""Resume a streamed (WebDataset) training run at its saved stream position."""
import logging
from typing import Dict, Optional, Tuple

import torch
from mmengine.dist import all_gather, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator

from silc_seg.registry import HOOKS

POSITION_LENGTH = 5  # (worker_id, epoch, shard, offset, consumed), see WebDatasetImageText


class _AdvancedIterator:
    """Answers the first ``skip`` ``next()`` calls with None, then reads ``iterator``.

    ``IterBasedTrainLoop.run`` replays a resumed run by calling ``next()`` once per trained
    iteration ("Advance dataloader N steps"); when the stream already starts at its saved
    position, those calls must not read (and decode) data.
    """

    def __init__(self, iterator, skip: int) -> None:
        self.iterator = iterator
        self.skip = skip

    def __iter__(self):
        return self

    def __next__(self):
        if self.skip > 0:
            self.skip -= 1
            return None
        return next(self.iterator)


@HOOKS.register_module()
class StreamResumeHook(Hook):
    """Save the stream position of a streamed dataset in checkpoints and resume there.

    MMEngine resumes an ``IterBasedTrainLoop`` by reading (and decoding, augmenting, collating)
    every batch trained before, which takes hours at web scale. With this hook:

    - after each iteration it notes the ``stream_position`` the batch's samples carry (one per
      dataloader worker, see :class:`~silc_seg.datasets.WebDatasetImageText`), gathered over
      ranks (a small all-gather, only when distributed) because only rank 0 saves checkpoints;
    - checkpoints store them under ``stream_position`` with the world size and worker count;
    - on ``--resume`` it stops the dataloader workers that started before the checkpoint was
      loaded, hands each rank's positions to the dataset (``resume_at``), starts the workers
      again, and lets the loop's replay pass without reading data. Each worker rebuilds its
      position by reading one shuffle block of its current shard; the resumed run then sees the
      same samples, in the same order, as an uninterrupted one.

    The workers the loop starts before the checkpoint is loaded have usually fetched their first
    ``prefetch_factor`` batches from the start of the stream by then; those are dropped (a few
    batches, not the whole history). The dataset draws each sample's caption and augmentations
    from its stream position, so the resumed run also sees the same crops.

    Without a saved position (an older checkpoint), or with another world size or number of
    workers, it warns and MMEngine's replay runs as usual. Only ``IterBasedTrainLoop`` is
    supported (epoch-based runs resume at an epoch start and need no stream position).
    """

    priority = 'NORMAL'  # after_train_iter before CheckpointHook (VERY_LOW)

    def __init__(self) -> None:
        self._positions: Dict[int, Tuple[int, ...]] = {}
        self._next_worker = 0  # the worker whose batch comes next (the same on every rank)
        self._all_ranks: Optional[list] = None
        self._to_restore: Optional[list] = None

    @staticmethod
    def _num_workers(runner) -> int:
        return max(runner.train_dataloader.num_workers, 1)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        for sample in (data_batch or {}).get('data_samples') or []:
            position = sample.metainfo.get('stream_position')
            if position is not None:
                self._positions[int(position[0])] = tuple(int(v) for v in position)
                self._next_worker = (int(position[0]) + 1) % self._num_workers(runner)
        if get_world_size() > 1:  # every rank takes part; only rank 0 saves
            self._all_ranks = self._gather(runner)

    def _gather(self, runner) -> list:
        """Every rank's positions: a list (ranks) of lists of positions."""
        table = torch.full((self._num_workers(runner), POSITION_LENGTH), -1, dtype=torch.long)
        for worker_id, position in self._positions.items():
            table[worker_id] = torch.tensor(position)
        return [[tuple(row.tolist()) for row in gathered if row[0] >= 0]
                for gathered in all_gather(table)]

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        positions = self._all_ranks if self._all_ranks is not None else [
            sorted(self._positions.values())
        ]
        checkpoint['stream_position'] = dict(
            world_size=get_world_size(),
            num_workers=self._num_workers(runner),
            next_worker=self._next_worker,
            positions=[[list(p) for p in rank] for rank in positions])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('stream_position')
        if state is None:
            print_log(
                'StreamResumeHook: the checkpoint has no stream position; the loop '
                'replays the stream instead',
                logger='current',
                level=logging.WARNING)
            return
        world_size, num_workers = get_world_size(), self._num_workers(runner)
        if (state['world_size'], state['num_workers']) != (world_size, num_workers):
            print_log(
                f'StreamResumeHook: the checkpoint was saved with {state["world_size"]} rank(s) '
                f'x {state["num_workers"]} dataloader worker(s), this run has {world_size} x '
                f'{num_workers}: the shard assignment differs, so the loop replays the stream '
                'instead',
                logger='current',
                level=logging.WARNING)
            return
        self._to_restore = [tuple(p) for p in state['positions'][get_rank()]]
        self._positions = {p[0]: p for p in self._to_restore}
        self._next_worker = int(state['next_worker'])

    def before_train(self, runner) -> None:
        if self._to_restore is None:
            return
        loop = runner.train_loop
        dataset = loop.dataloader.dataset
        if not isinstance(loop, IterBasedTrainLoop) or not hasattr(dataset, 'resume_at'):
            raise TypeError(
                'StreamResumeHook needs an IterBasedTrainLoop over a dataset with resume_at '
                f'(WebDatasetImageText), got {type(loop).__name__} over '
                f'{type(dataset).__name__}')
        # The loop started its workers before the checkpoint was loaded: stop them first, so
        # that none of them can take the positions meant for the new ones.
        _stop_workers(loop)
        dataset.resume_at(self._to_restore, self._num_workers(runner), self._next_worker)
        loop.dataloader_iterator = _AdvancedIterator(
            _InfiniteDataloaderIterator(loop.dataloader), skip=loop.iter)
        where = ', '.join(f'worker {w}: epoch {e}, shard {s}, block at {o} + {c}'
                          for w, e, s, o, c in self._to_restore)
        print_log(
            f'Resumed the stream at its saved position (rank {get_rank()}; {where or "start"}); '
            'the "Advance dataloader" that follows reads no data',
            logger='current')
        self._to_restore = None


def _stop_workers(loop) -> None:
    """Shut down the dataloader workers of ``loop``'s current iterator (persistent or not)."""
    iterators = [
        getattr(loop.dataloader_iterator, '_iterator', None),
        getattr(loop.dataloader, '_iterator', None)
    ]
    for iterator in iterators:
        shutdown = getattr(iterator, '_shutdown_workers', None)
        if shutdown is not None:
            shutdown()
    loop.dataloader_iterator = None
    if getattr(loop.dataloader, '_iterator', None) is not None:
        loop.dataloader._iterator = None  # persistent workers: a fresh iterator next time
