from .distillation_head import DistillationHead
from .locca_decoder import LocCaDecoder
from .masked_token_decoder import MaskedTokenDecoder

__all__ = ['DistillationHead', 'LocCaDecoder', 'MaskedTokenDecoder']
