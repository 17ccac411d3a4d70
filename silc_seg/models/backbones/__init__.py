from .dino_vit import DINOViT
from .naflex_vit import NaFlexVisionTransformer
from .silc_vit import SILCVisionTransformer

__all__ = ['DINOViT', 'NaFlexVisionTransformer', 'SILCVisionTransformer']
