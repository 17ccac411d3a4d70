from . import checkpointing, hooks, optimizers

__all__ = ['checkpointing', 'hooks', 'optimizers']
