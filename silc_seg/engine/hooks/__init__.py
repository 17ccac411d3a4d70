from .data_stats_hook import DataStatsHook  # noqa: F401
from .model_dataset_meta_hook import ModelDatasetMetaHook  # noqa: F401
from .ema_teacher_hook import EMATeacherHook  # noqa: F401
from .teacher_temp_hook import TeacherTempWarmupHook  # noqa: F401
from .compile_blocks_hook import CompileBlocksHook  # noqa: F401
from .stream_resume_hook import StreamResumeHook  # noqa: F401
from .per_parameter_grad_clip_hook import PerParameterGradClipHook  # noqa: F401
from .freeze_last_layer_hook import FreezeLastLayerHook  # noqa: F401
