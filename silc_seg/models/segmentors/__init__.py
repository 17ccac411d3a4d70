from .cass_segmentor import CASSSegmentor  # noqa: F401
from .cat_seg import CATSeg  # noqa: F401
from .score_averaging_tta import ScoreAveragingTTAModel  # noqa: F401
from .zero_shot_segmentor import ZeroShotSegmentor  # noqa: F401
