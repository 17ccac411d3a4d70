from .naflex_vit import NaFlexVisionTransformer
from .silc_vit import SILCVisionTransformer

__all__ = ['NaFlexVisionTransformer', 'SILCVisionTransformer']
