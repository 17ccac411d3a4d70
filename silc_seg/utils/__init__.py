from .checkpoint import (check_state_dict_keys, from_safe_checkpoint,
                         register_checkpoint_loaders, to_safe_checkpoint)
from .config import prepare_runner_cfg, setup_cpu_distributed

register_checkpoint_loaders()

__all__ = [
    'check_state_dict_keys', 'from_safe_checkpoint', 'prepare_runner_cfg',
    'register_checkpoint_loaders', 'setup_cpu_distributed', 'to_safe_checkpoint'
]
