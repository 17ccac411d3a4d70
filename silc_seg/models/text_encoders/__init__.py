from .silc_text_transformer import SILCTextTransformer

__all__ = ['SILCTextTransformer']
