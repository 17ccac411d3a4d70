from . import transforms
from .demo_seg import DemoSegDataset
from .image_text_manifest import ImageTextManifestDataset
from .webdataset_image_text import WebDatasetImageText

__all__ = [
    'transforms', 'DemoSegDataset', 'ImageTextManifestDataset',
    'WebDatasetImageText'
]
