from . import transforms
from .ade20k_847 import ADE20K847Dataset
from .demo_seg import DemoSegDataset
from .image_text_manifest import ImageTextManifestDataset
from .layout import DataLayoutError, check_data_layout, check_seg_dataset_layout
from .pascal_context_459 import PascalContext459Dataset
from .webdataset_image_text import WebDatasetImageText

__all__ = [
    'transforms', 'ADE20K847Dataset', 'DataLayoutError', 'DemoSegDataset',
    'ImageTextManifestDataset', 'PascalContext459Dataset', 'WebDatasetImageText',
    'check_data_layout', 'check_seg_dataset_layout'
]
