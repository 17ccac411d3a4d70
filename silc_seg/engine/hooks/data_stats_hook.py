import time
from collections import deque
from typing import Optional, Sequence

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook

from silc_seg.registry import HOOKS


@HOOKS.register_module()
class DataStatsHook(Hook):
    """Log training throughput and the number of skipped bad samples.

    Adds two scalars to the message hub, which ``LoggerHook`` prints and sends to the visual
    backends:

    - ``train/images_per_sec``: images (not crops) per second over all ranks, averaged over
      the last ``window_size`` iterations;
    - ``train/skipped_samples``: bad samples skipped since the start of training, summed over
      ranks and dataloader workers (from the ``num_skipped`` each data sample carries, see
      :mod:`silc_seg.datasets.image_text_utils`); it is kept across ``--resume``.

    The skip count is all-reduced every ``interval`` iterations (the same iterations on every
    rank) and at the end of training.

    Args:
        interval (int): All-reduce and update the skip count every ``interval`` iterations;
            set it to the ``LoggerHook`` interval. Defaults to 10.
        window_size (int): Iterations averaged for images/s. Defaults to 20.
    """

    priority = 'NORMAL'

    def __init__(self, interval: int = 10, window_size: int = 20) -> None:
        if interval < 1 or window_size < 1:
            raise ValueError('interval and window_size must be >= 1')
        self.interval = interval
        self.window_size = window_size
        self._iter_times: deque = deque(maxlen=window_size)
        self._iter_images: deque = deque(maxlen=window_size)
        self._last_time: Optional[float] = None
        self._pending_skipped = 0
        self._total_skipped = 0

    def before_train(self, runner) -> None:
        hub = runner.message_hub
        if 'train/skipped_samples' in hub.log_scalars:
            self._total_skipped = int(hub.get_scalar('train/skipped_samples').current())

    def before_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None) -> None:
        if self._last_time is None:
            self._last_time = time.perf_counter()

    @staticmethod
    def _batch_stats(data_batch: Optional[dict]) -> tuple:
        samples: Sequence = (data_batch or {}).get('data_samples') or []
        skipped = sum(int(s.metainfo.get('num_skipped', 0)) for s in samples)
        return len(samples), skipped

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        now = time.perf_counter()
        num_images, skipped = self._batch_stats(data_batch)
        self._pending_skipped += skipped
        self._iter_times.append(now - self._last_time)
        self._iter_images.append(num_images * get_world_size())
        self._last_time = now
        hub = runner.message_hub
        hub.update_scalar('train/images_per_sec',
                          sum(self._iter_images) / max(sum(self._iter_times), 1e-9))
        if self.every_n_train_iters(runner, self.interval) or self.is_last_train_iter(runner):
            self._sync_skipped(runner)
        hub.update_scalar('train/skipped_samples', self._total_skipped)

    def _sync_skipped(self, runner) -> None:
        pending = torch.tensor(self._pending_skipped, dtype=torch.long)
        all_reduce(pending)
        self._total_skipped += int(pending.item())
        self._pending_skipped = 0
