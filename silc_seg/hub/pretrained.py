"""Public weights by name, wherever a checkpoint path goes.

Names (docs/weights.md):

* ``openai:ViT-B-16``: OpenAI's release (open_clip's table; QuickGELU towers);
* ``open_clip:ViT-B-16/laion2b_s34b_b88k``: any open_clip model / pretrained tag;
* ``hf-hub:timm/ViT-B-16-SigLIP2[@revision]``: an open_clip-format Hugging Face Hub repository
  (its ``open_clip_config.json`` names the architecture; CLIP, SigLIP and SigLIP 2);
* ``https://storage.googleapis.com/big_vision/...npz[#model=NAME]``: a big_vision file.

:func:`resolve_pretrained` downloads the file (:mod:`silc_seg.hub.download`), picks the towers
from the name, converts on the fly and caches the result under
``$SILC_SEG_CACHE/converted/<sha256 of the source>-v<CONVERSION_VERSION>.safetensors``, so a
second run only hashes the source and loads. :func:`register_pretrained_name_loaders` makes these
names MMEngine checkpoint schemes (``load_from``, ``init_cfg=dict(type='Pretrained')``,
``tools/test.py``, ``init_model``).
"""
import json
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple
from urllib.parse import urlsplit

from .download import (PretrainedUnavailableError, download_hf_file, download_hf_weights,
                       download_open_clip_url, download_url, file_sha256, open_clip_checksum,
                       silc_cache_dir)

NAME_PREFIXES = ('openai:', 'open_clip:', 'hf-hub:')
BIG_VISION_URL = 'https://storage.googleapis.com/big_vision/'
# Bump when a converter's output changes: cached conversions of older versions are not used.
CONVERSION_VERSION = 1
# Released big_vision files -> the open_clip name of their towers (others: ``#model=NAME``).
BIG_VISION_FILES = {
    'webli_en_b16_224_63724782.npz': 'ViT-B-16-SigLIP',
    # SigLIP 2 releases under gs://big_vision/siglip2/ (big_vision README_siglip2.md).
    'siglip2_b32_256.npz': 'ViT-B-32-SigLIP2-256',
    'siglip2_b16_224.npz': 'ViT-B-16-SigLIP2',
    'siglip2_b16_256.npz': 'ViT-B-16-SigLIP2-256',
    'siglip2_b16_384.npz': 'ViT-B-16-SigLIP2-384',
    'siglip2_b16_512.npz': 'ViT-B-16-SigLIP2-512',
    'siglip2_l16_256.npz': 'ViT-L-16-SigLIP2-256',
    'siglip2_l16_384.npz': 'ViT-L-16-SigLIP2-384',
    'siglip2_l16_512.npz': 'ViT-L-16-SigLIP2-512',
    'siglip2_so400m14_224.npz': 'ViT-SO400M-14-SigLIP2',
    'siglip2_so400m14_384.npz': 'ViT-SO400M-14-SigLIP2-378',
    'siglip2_so400m16_256.npz': 'ViT-SO400M-16-SigLIP2-256',
    'siglip2_so400m16_384.npz': 'ViT-SO400M-16-SigLIP2-384',
    'siglip2_so400m16_512.npz': 'ViT-SO400M-16-SigLIP2-512',
    'siglip2_g-opt16_256.npz': 'ViT-gopt-16-SigLIP2-256',
    'siglip2_g-opt16_384.npz': 'ViT-gopt-16-SigLIP2-384',
    'siglip2_b16_naflex.npz': 'ViT-B-16-SigLIP2-naflex',
    'siglip2_so400m16_naflex.npz': 'ViT-SO400M-16-SigLIP2-naflex',
}
# The SentencePiece vocabulary of big_vision's English SigLIP models.
T5_VOCABULARY_URL = 'https://storage.googleapis.com/t5-data/vocabs/cc_en.32000/sentencepiece.model'
# The SentencePiece file of each family's hub repositories (``text_cfg.hf_tokenizer_name``):
# T5's vocabulary for SigLIP, Gemma's (``tokenizer.model``) for SigLIP 2.
HF_SENTENCEPIECE_FILES = {'siglip': 'spiece.model', 'siglip2': 'tokenizer.model'}
# Gemma's SentencePiece model as big_vision reads it (pp/proj/paligemma/ops.py).
GEMMA_VOCABULARY_URL = 'https://storage.googleapis.com/big_vision/gemma_tokenizer.model'
BIG_VISION_VOCABULARY_URLS = {'siglip': T5_VOCABULARY_URL, 'siglip2': GEMMA_VOCABULARY_URL}


def model_family(model: str) -> str:
    """``'siglip2'``, ``'siglip'`` or ``'clip'``: which converter an open_clip model needs."""
    if 'siglip2' in model.lower():
        return 'siglip2'
    return 'siglip' if 'siglip' in model.lower() else 'clip'


def _convert_open_clip_file(path: str) -> dict:
    from silc_seg.converters import convert_openclip_state_dict, load_openclip_checkpoint
    return convert_openclip_state_dict(load_openclip_checkpoint(path)[0])


def _convert_big_vision_file(path: str) -> dict:
    import numpy as np

    from silc_seg.converters import convert_big_vision_arrays
    with np.load(path, allow_pickle=False) as arrays:
        return convert_big_vision_arrays(arrays)


def _convert_siglip2_file(path: str) -> dict:
    from silc_seg.converters import convert_siglip2_weights, load_siglip2_source
    return convert_siglip2_weights(load_siglip2_source(path))


# (family, source format) -> converter of a downloaded file.
FAMILY_CONVERTERS: Dict[Tuple[str, str], Callable[[str], dict]] = {
    ('clip', 'open_clip'): _convert_open_clip_file,
    ('siglip', 'open_clip'): _convert_open_clip_file,
    ('siglip', 'big_vision'): _convert_big_vision_file,
    ('siglip2', 'open_clip'): _convert_siglip2_file,
    ('siglip2', 'big_vision'): _convert_siglip2_file,
}


@dataclass
class PretrainedWeights:
    """Converted public weights and what a model needs to use them.

    Attributes:
        name (str): the name as given.
        model (str): open_clip model name of the towers (a key of ``MODEL_CONFIGS``).
        config (str): the tower config those weights fit (``configs/_base_/models/...``).
        checkpoint (str): the converted ``.safetensors`` file (MMEngine-loadable).
        source (str): the downloaded file.
        tokenizer (dict): overrides of the config's tokenizer (a downloaded vocabulary).
    """
    name: str
    model: str
    config: str
    checkpoint: str = ''
    source: str = ''
    tokenizer: dict = field(default_factory=dict)


@dataclass
class _Source:
    name: str
    model: str
    source_format: str = 'open_clip'
    url: str = ''
    hf_repo: str = ''
    hf_filename: Optional[str] = None
    revision: Optional[str] = None
    tokenizer_repo: str = ''
    tokenizer_url: str = ''


def is_pretrained_name(name) -> bool:
    """Whether ``name`` is a weights name (not a local path or another URL)."""
    return isinstance(name, str) and (name.startswith(NAME_PREFIXES)
                                      or name.startswith(BIG_VISION_URL))


def converter_command(model: str, source: str = 'SRC', source_format: str = 'open_clip') -> str:
    """The manual conversion command of a downloaded file."""
    if model_family(model) == 'siglip2':
        tool = 'siglip2silc'
    else:
        tool = 'bigvision2silc' if source_format == 'big_vision' else 'openclip2silc'
    return (f'python tools/model_converters/{tool}.py {source} '
            f'{re.sub(r"[^A-Za-z0-9_.-]+", "_", model)}.safetensors --model {model}')


def _supported_models() -> Dict[str, str]:
    from silc_seg.converters import MODEL_CONFIGS, SIGLIP2_NAFLEX_MODEL_CONFIGS
    return dict(MODEL_CONFIGS, **SIGLIP2_NAFLEX_MODEL_CONFIGS)


def _towers_of(model: str, quick_gelu: bool, name: str) -> str:
    """The ``MODEL_CONFIGS`` key of an open_clip model (``-quickgelu`` when the weights were
    trained with QuickGELU); a clear error when there is none."""
    if quick_gelu and not model.endswith('-quickgelu'):
        model = f'{model}-quickgelu'
    if model not in _supported_models():
        raise PretrainedUnavailableError(
            f'{name}: silc-seg has no towers for the open_clip model {model!r}; supported: '
            f'{", ".join(sorted(_supported_models()))} (silc_seg.converters.MODEL_CONFIGS).')
    return model


def _open_clip_table_entry(name: str, model: str, tag: str) -> dict:
    from open_clip.pretrained import get_pretrained_cfg, list_pretrained_tags_by_model
    cfg = get_pretrained_cfg(model, tag)
    if not cfg:
        tags = list_pretrained_tags_by_model(model)
        known = (f'its tags: {", ".join(tags)}' if tags else
                 'open_clip has no pretrained weights of that model (open_clip.list_pretrained())')
        raise PretrainedUnavailableError(
            f'{name}: open_clip has no pretrained weights {model!r} / {tag!r}; {known}.')
    return cfg


def _table_source(name: str, model: str, tag: str) -> _Source:
    """An ``openai:`` / ``open_clip:`` name: the publisher's URL when it carries a checksum,
    else the hub repository, else the plain URL."""
    cfg = _open_clip_table_entry(name, model, tag)
    towers = _towers_of(model, bool(cfg.get('quick_gelu')), name)
    source = _Source(name=name, model=towers)
    if model_family(towers) in HF_SENTENCEPIECE_FILES:
        source.tokenizer_repo = _hf_tokenizer_repo(_open_clip_model_cfg(model))
    url, hub = cfg.get('url', ''), cfg.get('hf_hub', '')
    if url and (open_clip_checksum(url) or not hub):
        source.url = url
    else:
        # open_clip's convention: 'org/repo/' (its default file) or 'org/repo/filename'.
        source.hf_repo, filename = osp.split(hub)
        source.hf_filename = filename or None
    return source


def _open_clip_model_cfg(model: str) -> dict:
    from open_clip import get_model_config
    return get_model_config(model) or {}


def _hf_tokenizer_repo(model_cfg: dict) -> str:
    return (model_cfg.get('text_cfg') or {}).get('hf_tokenizer_name', '')


def _strip_activation(model_cfg: dict) -> dict:
    return {key: value for key, value in model_cfg.items() if key != 'quick_gelu'}


def _match_open_clip_model(model_cfg: dict, name: str) -> str:
    """The open_clip model whose built-in config is ``model_cfg`` (up to QuickGELU)."""
    import open_clip
    wanted = _strip_activation(model_cfg)
    matches = [
        model for model in open_clip.list_models()
        if _strip_activation(open_clip.get_model_config(model) or {}) == wanted
    ]
    if not matches:
        raise PretrainedUnavailableError(
            f'{name}: its open_clip_config.json describes no open_clip model silc-seg knows '
            f'(model_cfg: {json.dumps(model_cfg)[:300]}); supported: '
            f'{", ".join(sorted(_supported_models()))}.')
    # ``X`` and ``X-quickgelu`` differ only in the activation, which the caller takes from the
    # repository's config: the match is the base name.
    bases = sorted({re.sub(r'-quickgelu$', '', model) for model in matches})
    supported = [model for model in bases if model in _supported_models()]
    return (supported or bases)[0]


def _hub_source(name: str) -> _Source:
    repo, _, revision = name[len('hf-hub:'):].partition('@')
    command = converter_command('MODEL', 'SRC')
    with open(
            download_hf_file(repo, 'open_clip_config.json', 'the open_clip config', command,
                             revision or None)) as handle:
        config = json.load(handle)
    model_cfg = config.get('model_cfg', config)
    model = _match_open_clip_model(model_cfg, name)
    towers = _towers_of(model, bool(model_cfg.get('quick_gelu')), name)
    source = _Source(name=name, model=towers, hf_repo=repo, revision=revision or None)
    if model_family(towers) in HF_SENTENCEPIECE_FILES:
        source.tokenizer_repo = _hf_tokenizer_repo(model_cfg) or repo
    return source


def _big_vision_source(name: str) -> _Source:
    url, _, fragment = name.partition('#')
    model = dict(part.split('=', 1) for part in fragment.split('&')
                 if '=' in part).get('model') or BIG_VISION_FILES.get(
                     osp.basename(urlsplit(url).path))
    if not model:
        raise PretrainedUnavailableError(
            f'{name}: not a big_vision file silc-seg knows ({", ".join(BIG_VISION_FILES)}); '
            f'name its towers: {url}#model=ViT-B-16-SigLIP')
    towers = _towers_of(model, False, name)
    return _Source(
        name=name,
        model=towers,
        source_format='big_vision',
        url=url,
        tokenizer_url=BIG_VISION_VOCABULARY_URLS.get(model_family(towers), ''))


def parse_pretrained_name(name: str) -> _Source:
    """Where the weights of a name come from and which towers they fit (may read the hub
    repository's ``open_clip_config.json``)."""
    try:
        import open_clip  # noqa: F401  (its tables, configs and downloaders)
    except ImportError:
        raise PretrainedUnavailableError(
            f'{name}: weights names need open_clip: pip install open-clip-torch') from None
    if name.startswith('openai:'):
        return _table_source(name, name[len('openai:'):], 'openai')
    if name.startswith('open_clip:'):
        model, slash, tag = name[len('open_clip:'):].partition('/')
        if not slash or not model or not tag:
            raise PretrainedUnavailableError(
                f'{name}: write open_clip:MODEL/TAG, e.g. open_clip:ViT-B-16/laion2b_s34b_b88k '
                '(open_clip.list_pretrained() lists them)')
        return _table_source(name, model, tag)
    if name.startswith('hf-hub:'):
        return _hub_source(name)
    if name.startswith(BIG_VISION_URL):
        return _big_vision_source(name)
    raise PretrainedUnavailableError(
        f'{name!r} is not a weights name: use openai:MODEL, open_clip:MODEL/TAG, '
        f'hf-hub:ORG/REPO or a {BIG_VISION_URL} URL')


def _download(source: _Source) -> str:
    command = converter_command(source.model, 'SRC', source.source_format)
    if source.source_format == 'big_vision':
        return download_url(source.url, 'the weights', command)
    if source.url:
        return download_open_clip_url(source.url, command)
    return download_hf_weights(source.hf_repo, source.hf_filename, command, source.revision)


def _tokenizer_overrides(source: _Source) -> dict:
    command = 'put the SentencePiece model there'
    if source.tokenizer_repo:
        filename = HF_SENTENCEPIECE_FILES[model_family(source.model)]
        return dict(
            model_file=download_hf_file(source.tokenizer_repo, filename,
                                        'the tokenizer vocabulary', command))
    if source.tokenizer_url:
        return dict(
            model_file=download_url(source.tokenizer_url, 'the tokenizer vocabulary', command))
    return {}


def convert_cached(source_file: str, source: _Source, config: str) -> str:
    """The converted weights of ``source_file``, from the cache or converted and cached.

    Returns:
        str: ``$SILC_SEG_CACHE/converted/<sha256>-v<CONVERSION_VERSION>.safetensors``.
    """
    from silc_seg.converters import build_towers, save_state_dict, verify_state_dict
    target = silc_cache_dir('converted',
                            f'{file_sha256(source_file)}-v{CONVERSION_VERSION}.safetensors')
    if osp.isfile(target):
        return target
    family = model_family(source.model)
    converter = FAMILY_CONVERTERS.get((family, source.source_format))
    if converter is None:
        raise PretrainedUnavailableError(
            f'{source.name}: no converter for {family} weights in {source.source_format} format')
    try:
        state_dict = converter(source_file)
        verify_state_dict(state_dict, build_towers(config))
    except (KeyError, ValueError, OSError, RuntimeError, TypeError) as error:
        raise PretrainedUnavailableError(
            f'{source.name}: the downloaded file {source_file} does not convert to the towers of '
            f'{config} ({type(error).__name__}: {str(error)[:500]}); if the file is damaged, '
            'delete it and run again') from None
    os.makedirs(osp.dirname(target), exist_ok=True)
    partial = f'{target}.{os.getpid()}.part.safetensors'
    save_state_dict(
        state_dict, partial, meta=dict(source=source.name, model=source.model, config=config))
    os.replace(partial, target)  # never a half-written cache entry
    return target


def resolve_pretrained(name: str) -> PretrainedWeights:
    """Download (or find in the caches) and convert the weights of a name.

    Args:
        name (str): ``openai:...``, ``open_clip:...``, ``hf-hub:...`` or a big_vision URL.

    Returns:
        PretrainedWeights: the converted checkpoint, its towers' config and tokenizer files.

    Raises:
        PretrainedUnavailableError: unknown name, unsupported architecture, offline, or a
            download refused; the message names the URL, the cache path and the manual
            converter command.
    """
    source = parse_pretrained_name(name)
    config = _supported_models()[source.model]
    source_file = _download(source)
    checkpoint = convert_cached(source_file, source, config)
    return PretrainedWeights(
        name=name,
        model=source.model,
        config=config,
        checkpoint=checkpoint,
        source=source_file,
        tokenizer=_tokenizer_overrides(source))


def load_from_pretrained_name(filename: str, map_location=None) -> dict:
    """MMEngine checkpoint loader of weights names (see :func:`resolve_pretrained`)."""
    from silc_seg.utils.checkpoint import load_from_local
    return load_from_local(resolve_pretrained(filename).checkpoint, map_location)


def register_pretrained_name_loaders() -> None:
    """Register the name prefixes with MMEngine's ``CheckpointLoader``."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes=[*NAME_PREFIXES, BIG_VISION_URL], loader=load_from_pretrained_name, force=True)
