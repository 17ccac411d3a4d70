from .fast_random_resized_crop import FastRandomResizedCrop
from .hue_safe_color_jitter import HueSafeColorJitter, adjust_hue
from .load_wide_annotations import LoadWideAnnotations
from .pack_silc_inputs import PackSILCInputs
from .tokenize_caption import TokenizeCaption
from .tokenize_regions import TokenizeRegions

__all__ = [
    'FastRandomResizedCrop', 'HueSafeColorJitter', 'LoadWideAnnotations', 'PackSILCInputs',
    'TokenizeCaption', 'TokenizeRegions', 'adjust_hue'
]
