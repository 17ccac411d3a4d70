"""Test helpers recording which samples a training run decodes (a transform, so it works in
dataloader worker processes) and which it trains on (a hook)."""
import os.path as osp

from mmcv.transforms import BaseTransform
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
    ``<work_dir>/trained.txt``, and a ``---`` line to ``decoded`` when training starts (after
    StreamResumeHook has stopped the workers started before a resume)."""

    priority = 'LOW'

    def __init__(self, decoded: str) -> None:
        self.decoded = decoded

    def before_train(self, runner) -> None:
        with open(self.decoded, 'a') as f:
            f.write('---\n')

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        with open(osp.join(runner.work_dir, 'trained.txt'), 'a') as f:
            for sample in data_batch['data_samples']:
                f.write(f'{runner.iter} {sample.stream_position[1]}:{sample.sample_idx}\n')
