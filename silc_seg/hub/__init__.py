"""Public weights by name (``openai:``, ``open_clip:``, ``hf-hub:``, big_vision URLs): download,
conversion on the fly, caches. See docs/weights.md."""
from .download import (BASE_URL_ENV, CACHE_ENV, PretrainedUnavailableError, rewrite_url,
                       silc_cache_dir)
from .pretrained import (CONVERSION_VERSION, FAMILY_CONVERTERS, NAME_PREFIXES, PretrainedWeights,
                         is_pretrained_name, load_from_pretrained_name, parse_pretrained_name,
                         register_pretrained_name_loaders, resolve_pretrained)

register_pretrained_name_loaders()

__all__ = [
    'BASE_URL_ENV', 'CACHE_ENV', 'CONVERSION_VERSION', 'FAMILY_CONVERTERS', 'NAME_PREFIXES',
    'PretrainedUnavailableError', 'PretrainedWeights', 'is_pretrained_name',
    'load_from_pretrained_name', 'parse_pretrained_name', 'register_pretrained_name_loaders',
    'resolve_pretrained', 'rewrite_url', 'silc_cache_dir'
]
