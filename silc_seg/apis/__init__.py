from .inference import init_model, load_model_checkpoint
from .open_vocab_segmenter import (METHOD_CONFIGS, OpenVocabSegmenter, Segmentation, class_palette,
                                   zero_shot_config)

__all__ = [
    'METHOD_CONFIGS', 'OpenVocabSegmenter', 'Segmentation', 'class_palette', 'init_model',
    'load_model_checkpoint', 'zero_shot_config'
]
