from .zero_shot_head import ZeroShotHead  # noqa: F401
