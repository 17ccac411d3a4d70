"""MMEngine's CheckpointHook with crash-safe writes, safe rotation, resume from the newest good."""
import os
import os.path as osp
from collections import deque
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from silc_seg.engine.checkpointing import (TEMP_MARKER, CheckpointDamagedError,
                                           CheckpointWriteError, atomic_write,
                                           checkpoint_backend_args, checkpoint_damage,
                                           find_resumable_checkpoint)
from silc_seg.registry import HOOKS


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """A :class:`~mmengine.hooks.CheckpointHook` whose saves survive kills and full disks.

    Same arguments and schedule as MMEngine's hook, and:

    - local checkpoints and ``last_checkpoint`` are written through the ``'atomic_local'`` file
      backend (temporary file in the same folder, fsync, rename): a save killed at any moment
      leaves the previous files as they were;
    - ``last_checkpoint`` moves only after the new file is complete, and ``max_keep_ckpts``
      deletes outdated checkpoints only after that (MMEngine deletes the oldest *before* saving,
      so with ``max_keep_ckpts=1`` a failed save left no checkpoint at all);
    - a failed write (disk full) stops the run with :class:`CheckpointWriteError` naming the file,
      the space left and the last complete checkpoint;
    - ``--resume`` (auto) continues from the newest complete checkpoint: a damaged newest file is
      named and skipped (:func:`~silc_seg.engine.checkpointing.find_resumable_checkpoint`), or,
      with ``strict_resume=True``, stops the run; ``--resume PATH`` with a damaged file stops with
      a message naming it;
    - temporary files left by a killed save (also inside a sharded checkpoint's folder) are
      removed when training starts;
    - :meth:`save_now` saves at the current iteration (used by PreemptionHook).

    Args:
        strict_resume (bool): Stop instead of falling back when the latest checkpoint is
            damaged. Defaults to False.
        **kwargs: :class:`~mmengine.hooks.CheckpointHook`'s arguments.
    """

    def __init__(self, *args, strict_resume: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.strict_resume = strict_resume
        self.last_saved_iter: Optional[int] = None

    def before_run(self, runner) -> None:
        # Runs before Runner.load_or_resume, which reads these two settings.
        if not runner._resume:
            return
        if runner._load_from is None:
            found = find_resumable_checkpoint(runner.work_dir, strict=self.strict_resume)
            if found is not None:
                runner._load_from = found
            return
        path = str(runner._load_from)
        reason = checkpoint_damage(path) if '://' not in path else None
        if reason is not None:
            raise CheckpointDamagedError(
                f'Cannot resume from {path}: the file is {reason}. Pass another checkpoint, or '
                '--resume without a path to continue from the newest complete one.')

    def before_train(self, runner) -> None:
        out_dir = str(self.out_dir or runner.work_dir)
        if self.file_client_args is None:
            self.backend_args = checkpoint_backend_args(out_dir, self.backend_args)
        super().before_train(runner)
        if is_main_process() and '://' not in str(self.out_dir):
            self._remove_temp_files(str(self.out_dir))

    @staticmethod
    def _remove_temp_files(folder: str) -> None:
        if not osp.isdir(folder):
            return
        for name in os.listdir(folder):
            if name.endswith('.pth') and osp.isdir(osp.join(folder, name)):
                # A sharded checkpoint's folder (FSDP state_dict_cfg='local'): its rank files.
                SafeCheckpointHook._remove_temp_files(osp.join(folder, name))
            elif name.startswith('.') and TEMP_MARKER in name:
                os.remove(osp.join(folder, name))
                print_log(
                    f'Removed {osp.join(folder, name)}, left by an interrupted save',
                    logger='current')

    def save_now(self, runner) -> str:
        """Save a checkpoint of the current state (after ``runner.iter + 1`` iterations), unless
        this hook saved one there already; call it on every rank. Returns its path."""
        step = runner.iter + 1
        if self.last_saved_iter != step:
            meta = dict(epoch=runner.epoch, iter=step)
            if self.by_epoch:  # mid-epoch: named by iteration, outside the epoch rotation
                self._save(runner, f'iter_{step}.pth', meta, rotate_step=None)
            else:
                self._save(runner, self.filename_tmpl.format(step), meta, rotate_step=step)
        return self.last_ckpt

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        self._save(runner, self.filename_tmpl.format(step), meta, rotate_step=step)

    def _save(self, runner, filename: str, meta: dict, rotate_step: Optional[int]) -> None:
        previous = self.last_ckpt or runner.message_hub.get_info('last_ckpt')
        outdated = []
        if rotate_step is not None and self.max_keep_ckpts > 0:
            kept = [s for s in self.keep_ckpt_ids if s != rotate_step] + [rotate_step]
            outdated, kept = kept[:-self.max_keep_ckpts], kept[-self.max_keep_ckpts:]
            self.keep_ckpt_ids = deque(kept, self.max_keep_ckpts)
            runner.message_hub.update_info('keep_ckpt_ids', kept)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        try:
            runner.save_checkpoint(
                self.out_dir,
                filename,
                self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args)
        except CheckpointWriteError as error:
            raise CheckpointWriteError(
                error.errno, f'{error.strerror} The last complete checkpoint is '
                f'{previous or "none (this was the first save)"}; --resume continues from it.'
            ) from error
        self.last_saved_iter = runner.iter + 1
        if not is_main_process():
            return
        atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), str(self.last_ckpt).encode())
        for step in outdated:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(step))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # checkpoints saved by DeepSpeed are folders
                self.file_backend.rmtree(path)
