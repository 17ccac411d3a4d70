"""Test helpers recording which samples a training run decodes (a transform, so it works in
dataloader worker processes) and which it trains on (a hook)."""
import os.path as osp

from mmcv.transforms import BaseTransform
from mmengine.dist import get_rank
from mmengine.hooks import Hook

from silc_seg.registry import HOOKS, TRANSFORMS


@TRANSFORMS.register_module(force=True)
class RecordKeys(BaseTransform):
    """Append ``<epoch>:<sample key>`` to ``path``, one line per decoded sample."""

    def __init__(self, path: str) -> None:
        self.path = path

    def transform(self, results: dict) -> dict:
        with open(self.path, 'a') as f:
            f.write(f'{results["stream_position"][1]}:{results["sample_idx"]}\n')
        return results


@HOOKS.register_module(force=True)
class RecordBatchesHook(Hook):
    """Append ``<iteration> <epoch>:<sample key>`` of every trained sample to
    ``<work_dir>/trained_rank<R>.txt``, a ``---`` line to ``decoded`` when training starts (after
    StreamResumeHook has stopped the workers started before a resume), and the number of
    batches the loop loaded to ``<work_dir>/batches_loaded_rank<R>.txt`` at the end (one file
    per rank ``R``)."""

    priority = 'LOW'

    def __init__(self, decoded: str) -> None:
        self.decoded = decoded

    def before_train(self, runner) -> None:
        with open(self.decoded, 'a') as f:
            f.write('---\n')
        loop = runner.train_loop
        loop.dataloader_iterator = _CountingIterator(loop.dataloader_iterator)

    def after_train(self, runner) -> None:
        with open(osp.join(runner.work_dir, f'batches_loaded_rank{get_rank()}.txt'), 'w') as f:
            f.write(str(runner.train_loop.dataloader_iterator.loaded))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        with open(osp.join(runner.work_dir, f'trained_rank{get_rank()}.txt'), 'a') as f:
            for sample in data_batch['data_samples']:
                f.write(f'{runner.iter} {sample.stream_position[1]}:{sample.sample_idx}\n')


class _CountingIterator:
    """Counts the batches the train loop takes from the dataloader (a resumed loop that replays
    the stream takes, and throws away, one per trained iteration first)."""

    def __init__(self, iterator) -> None:
        self.iterator = iterator
        self.loaded = 0

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self.iterator)
        self.loaded += batch is not None
        return batch
