"""Capture what the current MMEngine logger prints (its handlers keep the stdout they were
created with, so pytest's capsys does not see it)."""
import logging
from contextlib import contextmanager
from typing import Iterator, List, Tuple

from mmengine.logging import MMLogger


class _Records(logging.Handler):

    def __init__(self) -> None:
        super().__init__()
        self.messages: List[Tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.levelno, record.getMessage()))


@contextmanager
def captured_log() -> Iterator[List[Tuple[int, str]]]:
    """``(level, message)`` of every record the current MMEngine logger handles inside."""
    logger = MMLogger.get_current_instance()
    records = _Records()
    logger.addHandler(records)
    try:
        yield records.messages
    finally:
        logger.removeHandler(records)
