"""The base of the open-vocabulary sets with 16-bit label maps, as CAT-Seg prepares them."""
from mmseg.datasets import BaseSegDataset


class WideLabelSegDataset(BaseSegDataset):
    """A segmentation set whose label maps are 16-bit ``.tif`` files (0-based class indices,
    65535 = ignore), as CAT-Seg's ``datasets/prepare_*.py`` write them for vocabularies of more
    than 255 classes.

    Load the maps with ``LoadWideAnnotations`` (mmseg's ``LoadAnnotations`` truncates labels to
    8 bits) and evaluate with ``IoUMetric(ignore_index=65535)``. Subclasses set ``METAINFO``.

    Args:
        img_suffix (str): image suffix.
        seg_map_suffix (str): label map suffix.
        reduce_zero_label (bool): whether label 0 is ignored (no: the maps are 0-based).
        ignore_index (int): the ignored label value.
        **kwargs: the arguments of mmseg's ``BaseSegDataset``.
    """

    def __init__(self,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.tif',
                 reduce_zero_label: bool = False,
                 ignore_index: int = 65535,
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            ignore_index=ignore_index,
            **kwargs)
