from .silc_data_preprocessor import SILCDataPreprocessor

__all__ = ['SILCDataPreprocessor']
