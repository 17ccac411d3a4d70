"""mmseg's SegVisualizationHook that writes test overlays straight into one folder."""
import os.path as osp
from typing import Optional, Sequence

import mmcv
from mmengine import fileio
from mmseg.engine.hooks import SegVisualizationHook

from silc_seg.registry import HOOKS


@HOOKS.register_module()
class SegOverlayHook(SegVisualizationHook):
    """:class:`mmseg.engine.hooks.SegVisualizationHook` whose test overlays go to
    ``out_dir/<image name>.png``.

    mmseg's hook hands each overlay to the visualizer's backends, which write
    ``<save_dir>/vis_data/vis_image/test_<image file>_<step>.png``; ``tools/test.py --show-dir
    DIR`` promises the overlays in ``DIR``, so it uses this hook. Same arguments as mmseg's hook.

    Args:
        out_dir (str, optional): folder of the test overlays; None: mmseg's behaviour.
        **kwargs: :class:`~mmseg.engine.hooks.SegVisualizationHook` arguments.
    """

    def __init__(self, out_dir: Optional[str] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.out_dir = out_dir

    def _after_iter(self,
                    runner,
                    batch_idx: int,
                    data_batch: dict,
                    outputs: Sequence,
                    mode: str = 'val') -> None:
        # mmseg 1.2's hook draws val and test iterations here (after_test_iter: mode='test').
        if mode != 'test' or not self.draw or self.out_dir is None:
            return super()._after_iter(runner, batch_idx, data_batch, outputs, mode)
        if not self.every_n_inner_iters(batch_idx, self.interval):
            return
        for data_sample in outputs:
            img_path = data_sample.img_path
            image = mmcv.imfrombytes(
                fileio.get(img_path, backend_args=self.backend_args), channel_order='rgb')
            name = osp.splitext(osp.basename(img_path))[0]
            self._visualizer.add_datasample(
                name,
                image,
                data_sample=data_sample,
                show=self.show,
                wait_time=self.wait_time,
                out_file=osp.join(self.out_dir, f'{name}.png'),
                step=runner.iter)
