from .masked_self_distill import MaskedSelfDistill
from .silc import SILC

__all__ = ['MaskedSelfDistill', 'SILC']
