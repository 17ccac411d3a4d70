from .distillation_head import DistillationHead
from .masked_token_decoder import MaskedTokenDecoder

__all__ = ['DistillationHead', 'MaskedTokenDecoder']
