from .checkpoint import (CheckpointMismatchError, CheckpointRefusedError, check_checkpoint_fits,
                         list_keys, load_model_checkpoint, mmengine_safe_globals,
                         register_checkpoint_loaders, torch_load_weights_only)
from .config import (AMP_WRAPPERS, ConfigOverrideError, configs_root, fp32_without_gpu,
                     get_config_path, merge_cfg_options, prepare_runner_cfg, setup_cpu_distributed)
from .dist import close_process_group
from .log_utils import mmengine_log_level
from .modules import import_file_as_module
from .strategy import prepare_strategy_cfg
from .timing import synchronize, time_call
from .tool_args import (add_cfg_options_argument, add_launcher_arguments, export_local_rank,
                        load_config)
from .tta import apply_test_time_augmentation, build_tta_pipeline

register_checkpoint_loaders()

__all__ = [
    'AMP_WRAPPERS', 'CheckpointMismatchError', 'CheckpointRefusedError', 'ConfigOverrideError',
    'add_cfg_options_argument', 'add_launcher_arguments', 'apply_test_time_augmentation',
    'build_tta_pipeline', 'check_checkpoint_fits', 'close_process_group', 'configs_root',
    'export_local_rank', 'fp32_without_gpu', 'get_config_path', 'import_file_as_module',
    'list_keys', 'load_config', 'load_model_checkpoint', 'merge_cfg_options', 'mmengine_log_level',
    'mmengine_safe_globals', 'prepare_runner_cfg', 'prepare_strategy_cfg',
    'register_checkpoint_loaders', 'setup_cpu_distributed', 'synchronize', 'time_call',
    'torch_load_weights_only'
]
