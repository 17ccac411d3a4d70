from .safe_checkpoint_hook import SafeCheckpointHook  # noqa: F401
from .data_stats_hook import DataStatsHook  # noqa: F401
from .model_dataset_meta_hook import ModelDatasetMetaHook  # noqa: F401
