from .cat_seg_head import CATSegHead  # noqa: F401
from .zero_shot_head import ZeroShotHead  # noqa: F401
