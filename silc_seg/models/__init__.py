from . import (backbones, data_preprocessors, decode_heads, heads, layers, losses, pretrainers,
               segmentors, text_encoders, tokenizers)

__all__ = [
    'backbones', 'data_preprocessors', 'decode_heads', 'heads', 'layers', 'losses', 'pretrainers',
    'segmentors', 'text_encoders', 'tokenizers'
]
