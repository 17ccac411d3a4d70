from .silc import SILC
from .silc_ddp import SILCDistributedDataParallel

__all__ = ['SILC', 'SILCDistributedDataParallel']
