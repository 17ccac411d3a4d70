from . import checkpointing, hooks, optimizers
from .fsdp_strategy import SILCFSDPStrategy

__all__ = ['SILCFSDPStrategy', 'checkpointing', 'hooks', 'optimizers']
