from .silc_vit import SILCVisionTransformer

__all__ = ['SILCVisionTransformer']
