"""Conversion of public OpenAI CLIP / OpenCLIP / SigLIP / SigLIP 2 (big_vision) weights to SILC
towers (the library behind ``tools/model_converters/``)."""
from .big_vision import convert_big_vision_arrays
from .dino import DINO_MODELS, IGNORED_DINO_KEYS, convert_dino_state_dict
from .openclip import (IGNORED_OPENCLIP_KEYS, choose_openclip_model, convert_openclip_state_dict,
                       load_openclip_checkpoint, unwrap_state_dict)
from .siglip2 import (convert_siglip2, convert_siglip2_weights, convert_timm_trunk, fitting_models,
                      load_siglip2_source)
from .towers import (MODEL_CONFIGS, OPENAI_MODEL_NAMES, SIGLIP2_MODEL_CONFIGS,
                     SIGLIP2_NAFLEX_MODEL_CONFIGS, build_towers, config_path, save_converted,
                     save_state_dict, verify_state_dict)

__all__ = [
    'DINO_MODELS', 'IGNORED_DINO_KEYS', 'convert_dino_state_dict', 'IGNORED_OPENCLIP_KEYS',
    'MODEL_CONFIGS', 'OPENAI_MODEL_NAMES', 'SIGLIP2_MODEL_CONFIGS', 'SIGLIP2_NAFLEX_MODEL_CONFIGS',
    'build_towers', 'choose_openclip_model', 'config_path', 'convert_big_vision_arrays',
    'convert_openclip_state_dict', 'convert_siglip2', 'convert_siglip2_weights',
    'convert_timm_trunk', 'fitting_models', 'load_openclip_checkpoint', 'load_siglip2_source',
    'save_converted', 'save_state_dict', 'unwrap_state_dict', 'verify_state_dict'
]
