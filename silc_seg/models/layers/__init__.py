from .cat_seg_aggregator import CATSegAggregator  # noqa: F401
from .cat_seg_qv_finetune import SplitQKVLinear, setup_qv_finetuning  # noqa: F401
