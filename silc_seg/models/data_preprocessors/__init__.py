from .batch_photometric_augment import BatchPhotometricAugment
from .silc_data_preprocessor import SILCDataPreprocessor

__all__ = ['BatchPhotometricAugment', 'SILCDataPreprocessor']
