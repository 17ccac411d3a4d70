from .silc import SILC

__all__ = ['SILC']
