"""Conversion of SigLIP 2 weights (open_clip ``ViT-*-SigLIP2*``, timm trunks, big_vision ``.npz``)
to SILC towers, with the arch config found from the checkpoint's shapes.

:func:`convert_siglip2` is the entry point (``tools/model_converters/siglip2silc.py`` is its
command-line front end); docs/siglip2.md lists the releases and their configs.
"""
import functools
import os.path as osp
from typing import Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from silc_seg.utils.checkpoint import list_keys
from .big_vision import convert_big_vision_arrays
from .openclip import (_openclip_key, convert_openclip_state_dict, load_openclip_checkpoint,
                       unwrap_state_dict)
from .towers import (MODEL_CONFIGS, SIGLIP2_MODEL_CONFIGS, SIGLIP2_NAFLEX_MODEL_CONFIGS,
                     build_towers)

ALL_MODEL_CONFIGS = dict(MODEL_CONFIGS, **SIGLIP2_NAFLEX_MODEL_CONFIGS)

Source = Union[str, Mapping]


def _naflex_embed_key(key: str, value: Tensor) -> Optional[Tuple[str, Tensor]]:
    """timm NaFlexVit's linear patch embedding and 2-D positional table -> the conv patch
    embedding and flat ``pos_embed`` of the SILC towers; None for any other key."""
    if key == 'visual.trunk.embeds.proj.weight':
        # Linear over patches flattened as (row, column, channel) = a conv with that kernel.
        patch = int(round((value.shape[1] // 3)**0.5))
        if 3 * patch * patch != value.shape[1]:
            raise ValueError(f'NaFlex patch embedding of shape {tuple(value.shape)} is not a '
                             'linear map of square RGB patches')
        weight = value.reshape(value.shape[0], patch, patch, 3).permute(0, 3, 1, 2)
        return 'image_encoder.patch_embed.projection.weight', weight
    if key == 'visual.trunk.embeds.proj.bias':
        return 'image_encoder.patch_embed.projection.bias', value
    if key == 'visual.trunk.embeds.pos_embed':
        return 'image_encoder.pos_embed', value.reshape(1, -1, value.shape[-1])
    return None


def convert_timm_trunk(state_dict: Mapping[str, Tensor], prefix: str = '') -> Dict[str, Tensor]:
    """Convert a timm SigLIP image trunk (``VisionTransformer`` with a MAP head, or
    ``NaFlexVit``) to ``image_encoder.*`` weights.

    Args:
        state_dict (Mapping[str, Tensor]): the trunk's weights.
        prefix (str): the prefix of the trunk's keys (``'visual.trunk.'`` in open_clip).

    Returns:
        dict[str, Tensor]: ``image_encoder.*`` weights.
    """
    converted, unknown = {}, []
    for key, value in state_dict.items():
        if not key.startswith(prefix):
            unknown.append(key)
            continue
        name = 'visual.trunk.' + key[len(prefix):]
        renamed = _naflex_embed_key(name, value) or _openclip_key(name, value)
        if renamed is None or not renamed[0].startswith('image_encoder.'):
            unknown.append(key)
            continue
        converted[renamed[0]] = renamed[1].detach().contiguous()
    if unknown or not converted:
        raise KeyError(f'{len(unknown)} key(s) are not those of a timm SigLIP trunk: '
                       f'{list_keys(sorted(unknown))}')
    return converted


def _is_big_vision(source: Mapping) -> bool:
    return any(key.startswith(('img/', 'params/img/')) for key in source)


def _naflex_big_vision_arrays(arrays: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """big_vision NaFlex ViT arrays in the layout of its fixed-resolution ViT: the ``Dense``
    patch embedding ``(p * p * 3, D)`` as a conv kernel ``(p, p, 3, D)`` and the 2-D table
    ``(h, w, D)`` as ``(1, h * w, D)``."""
    root = 'params/' if any(k.startswith('params/') for k in arrays) else ''
    out = dict(arrays)
    kernel = np.asarray(arrays[root + 'img/embedding/kernel'])
    if kernel.ndim == 2:
        patch = int(round((kernel.shape[0] // 3)**0.5))
        out[root + 'img/embedding/kernel'] = kernel.reshape(patch, patch, 3, kernel.shape[1])
        table = np.asarray(arrays[root + 'img/pos_embedding'])
        out[root + 'img/pos_embedding'] = table.reshape(1, -1, table.shape[-1])
    return out


def is_naflex(source: Mapping) -> bool:
    """Whether unconverted weights are those of a NaFlex trunk (timm ``embeds.*`` keys, or a
    big_vision ``Dense`` patch embedding)."""
    if _is_big_vision(source):
        return any(
            k.endswith('img/embedding/kernel') and np.ndim(v) == 2 for k, v in source.items())
    return any('embeds.proj.' in key for key in source)


def convert_siglip2_weights(source: Mapping) -> Dict[str, Tensor]:
    """Convert SigLIP 2 weights of any supported layout (no arch check).

    Args:
        source (Mapping): an open_clip state dict (``visual.trunk.*``, ``text.*``), a timm
            trunk state dict (image tower only) or big_vision ``.npz`` arrays.

    Returns:
        dict[str, Tensor]: SILC checkpoint keys (``image_encoder.*``, ``text_encoder.*``,
        ``contrastive_loss.*``).
    """
    if _is_big_vision(source):
        return convert_big_vision_arrays(_naflex_big_vision_arrays(source))
    source = unwrap_state_dict(source)
    if not any(key.startswith(('visual.', 'text.')) for key in source):
        return convert_timm_trunk(source)
    embeds = {}
    for key in [k for k in source if k.startswith('visual.trunk.embeds.')]:
        renamed = _naflex_embed_key(key, source.pop(key))
        if renamed is None:
            raise KeyError(f'unknown NaFlex embedding key {key!r}')
        embeds[renamed[0]] = renamed[1].detach().contiguous()
    return dict(convert_openclip_state_dict(source), **embeds)


@functools.lru_cache(maxsize=None)
def _expected_shapes(config: str) -> Dict[str, Tuple[int, ...]]:
    with torch.device('meta'):
        towers = build_towers(config)
    return {
        f'{prefix}.{k}': tuple(v.shape)
        for prefix, module in towers.items()
        for k, v in module.state_dict().items()
    }


def _fits(state_dict: Mapping[str, Tensor], expected: Mapping[str, Tuple[int, ...]]) -> bool:
    image_only = not any(k.startswith('text_encoder.') for k in state_dict)
    if image_only:
        expected = {k: v for k, v in expected.items() if k.startswith('image_encoder.')}
    return set(state_dict) == set(expected) and all(
        tuple(state_dict[k].shape) == shape for k, shape in expected.items())


def fitting_models(state_dict: Mapping[str, Tensor],
                   candidates: Optional[Mapping[str, str]] = None) -> List[str]:
    """Model names whose arch config takes the converted weights exactly (same keys, same
    shapes; image-tower-only weights are matched against the image tower).

    Args:
        state_dict (Mapping[str, Tensor]): converted weights.
        candidates (Mapping[str, str], optional): model name -> arch config; defaults to every
            supported model (``MODEL_CONFIGS`` and the SigLIP 2 NaFlex models).

    Returns:
        list[str]: the fitting model names, sorted.
    """
    candidates = ALL_MODEL_CONFIGS if candidates is None else candidates
    return sorted(name for name, config in candidates.items()
                  if _fits(state_dict, _expected_shapes(config)))


def _describe(names: List[str]) -> str:
    return ', '.join(f'{name} ({ALL_MODEL_CONFIGS[name]})' for name in names)


def load_siglip2_source(path: str) -> Mapping:
    """Read a big_vision ``.npz`` (arrays) or an open_clip / timm checkpoint (state dict)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist')
    if path.endswith('.npz'):
        with np.load(path, allow_pickle=False) as arrays:
            return {key: arrays[key] for key in arrays.files}
    return load_openclip_checkpoint(path)[0]


def convert_siglip2(source: Source,
                    model_name: Optional[str] = None) -> Tuple[Dict[str, Tensor], str]:
    """Convert SigLIP 2 weights and choose their arch config.

    Args:
        source (str | Mapping): a checkpoint path (``.npz``: big_vision; else open_clip or
            timm, see :func:`load_siglip2_source`), or the loaded state dict / arrays.
        model_name (str, optional): the open_clip model name; its config must fit the weights
            (else the error names the config that does). None: the one SigLIP 2 config whose
            shapes fit (among the NaFlex configs for NaFlex weights, which have the shapes of
            the fixed-resolution 256 px towers).

    Returns:
        tuple[dict[str, Tensor], str]: the SILC weights and the arch config path
        (``configs/_base_/models/...``).
    """
    if isinstance(source, str):
        source = load_siglip2_source(source)
    naflex = is_naflex(source)
    converted = convert_siglip2_weights(source)
    family = SIGLIP2_NAFLEX_MODEL_CONFIGS if naflex else SIGLIP2_MODEL_CONFIGS
    if model_name is not None:
        if model_name not in ALL_MODEL_CONFIGS:
            raise ValueError(f'unsupported model {model_name!r}; choose from '
                             f'{sorted(ALL_MODEL_CONFIGS)}')
        config = ALL_MODEL_CONFIGS[model_name]
        fits = _fits(converted, _expected_shapes(config))
        if fits and (model_name in SIGLIP2_NAFLEX_MODEL_CONFIGS) == naflex:
            return converted, config
        fitting = fitting_models(converted, family if fits else ALL_MODEL_CONFIGS)
        kind = 'NaFlex ' if naflex else 'fixed-resolution '
        hint = (f'it fits {_describe(fitting)}: use --model {fitting[0]}'
                if fitting else 'no supported config fits it')
        raise ValueError(f'the {kind}checkpoint does not fit the towers of {model_name} '
                         f'({config}); {hint}')
    fits = fitting_models(converted, family)
    if len(fits) == 1:
        return converted, family[fits[0]]
    if fits:
        raise ValueError(f'the checkpoint fits several configs ({_describe(fits)}): choose '
                         'one with model_name / --model')
    others = fitting_models(converted, ALL_MODEL_CONFIGS)
    hint = (f'it fits {_describe(others)} (not a SigLIP 2 release): convert it with '
            f'--model {others[0]}'
            if others else f'no SigLIP 2 config fits it (SigLIP 2 releases: {sorted(family)})')
    raise ValueError(f'the checkpoint is not a released SigLIP 2 model: {hint}')
