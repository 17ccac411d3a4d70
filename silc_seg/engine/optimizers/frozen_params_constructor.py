"""Optimizer construction that reports frozen parameters in one line."""
import logging
import re
from typing import List

import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper

from silc_seg.registry import OPTIM_WRAPPER_CONSTRUCTORS

_FROZEN_SKIP = re.compile(r'^(?P<name>\S+) is skipped since its requires_grad=False$')


class _FrozenSkipCollector(logging.Filter):
    """Swallow MMEngine's per-parameter "is skipped since its requires_grad=False" warnings,
    keeping the parameter names."""

    def __init__(self) -> None:
        super().__init__()
        self.names: List[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        match = _FROZEN_SKIP.match(record.getMessage())
        if match is None:
            return True
        self.names.append(match.group('name'))
        return False


def _common_prefixes(names: List[str]) -> List[str]:
    """First dotted component of each name, in order of appearance (``teacher_head.*``)."""
    prefixes: List[str] = []
    for name in names:
        prefix = name.split('.')[0] + '.*'
        if prefix not in prefixes:
            prefixes.append(prefix)
    return prefixes


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class FrozenParamsOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """:class:`~mmengine.optim.DefaultOptimWrapperConstructor` that reports the parameters it
    leaves out for ``requires_grad=False`` in one line instead of one warning each.

    With a ``paramwise_cfg``, MMEngine warns once per frozen parameter; a SILC model has its whole
    EMA teacher frozen (hundreds of parameters for ViT-B/16), which buried the rest of the log.
    The parameter groups built are exactly the default constructor's.

    Use it with ``optim_wrapper = dict(constructor='FrozenParamsOptimWrapperConstructor', ...)``.
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        logger = MMLogger.get_current_instance()
        collector = _FrozenSkipCollector()
        logger.addFilter(collector)
        try:
            optim_wrapper = super().__call__(model)
        finally:
            logger.removeFilter(collector)
        if collector.names:
            print_log(
                f'{len(collector.names)} parameters with requires_grad=False are not optimized '
                f'({", ".join(_common_prefixes(collector.names))})',
                logger='current')
        return optim_wrapper
