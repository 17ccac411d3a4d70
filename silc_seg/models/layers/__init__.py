from .attention_pool import AttentionPoolLatent
from .cass import CASSDense
from .cass_text_adjustment import CASSTextAdjustment
from .cat_seg_aggregator import CATSegAggregator
from .cat_seg_qv_finetune import SplitQKVLinear, setup_qv_finetuning
from .dense_attention import DENSE_VARIANTS, last_block_forward
from .proxy_clip import ProxyCLIPDense
from .res_clip import ResCLIPDense
from .sc_clip import SCCLIPDense
from .transformer import Attention, LayerScale, Mlp, QuickGELU, TransformerBlock, build_activation

__all__ = [
    'Attention', 'AttentionPoolLatent', 'CASSDense', 'CASSTextAdjustment', 'CATSegAggregator',
    'DENSE_VARIANTS', 'LayerScale', 'Mlp', 'ProxyCLIPDense', 'QuickGELU', 'ResCLIPDense',
    'SCCLIPDense', 'SplitQKVLinear', 'TransformerBlock', 'build_activation', 'last_block_forward',
    'setup_qv_finetuning'
]
