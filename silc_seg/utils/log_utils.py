from contextlib import contextmanager
from typing import Iterator

from mmengine.logging import MMLogger


@contextmanager
def mmengine_log_level(level: int) -> Iterator[None]:
    """Set the current MMEngine logger's level inside the block.

    E.g. ``BaseModule.init_weights`` logs one line per parameter when no log file is open (over
    a thousand lines for ViT-B/16 before a benchmark's result); tools outside the runner wrap it
    with ``mmengine_log_level(logging.WARNING)``.

    Args:
        level (int): A ``logging`` level.
    """
    logger = MMLogger.get_current_instance()
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)
