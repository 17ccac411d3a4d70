from .zero_shot_segmentor import ZeroShotSegmentor  # noqa: F401
