from .attention_pool import AttentionPoolLatent  # noqa: F401
from .cat_seg_aggregator import CATSegAggregator  # noqa: F401
from .cat_seg_qv_finetune import SplitQKVLinear, setup_qv_finetuning  # noqa: F401
from .dense_attention import DENSE_VARIANTS, last_block_forward  # noqa: F401
from .proxy_clip import ProxyCLIPDense  # noqa: F401
from .res_clip import ResCLIPDense  # noqa: F401
from .sc_clip import SCCLIPDense  # noqa: F401
from .transformer import (Attention, LayerScale, Mlp, QuickGELU, TransformerBlock,  # noqa: F401
                          build_activation)
