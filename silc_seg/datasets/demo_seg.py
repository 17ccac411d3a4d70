from mmseg.datasets import BaseSegDataset

from silc_seg.registry import DATASETS
from silc_seg.utils.demo_data import CLASS_NAMES, palette


@DATASETS.register_module()
class DemoSegDataset(BaseSegDataset):
    """Segmentation split of the procedural demo data (``tools/misc/make_demo_data.py``).

    mmseg layout under ``data_root`` (``data/demo/seg``): ``img_dir/val/*.png`` and
    ``ann_dir/val/*.png`` with label ids ``0..15``, one per concept of
    :data:`silc_seg.utils.demo_data.CLASS_NAMES` (every pixel is labelled).

    Args:
        **kwargs: :class:`mmseg.datasets.BaseSegDataset` arguments.
    """

    METAINFO = dict(classes=CLASS_NAMES, palette=palette())

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False,
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs)
