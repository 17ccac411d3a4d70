"""Conversion of OpenAI CLIP / OpenCLIP (including OpenCLIP-SigLIP) weights to SILC towers.

Every source key is either converted or explicitly ignored (OpenAI's JIT metadata); anything else
is an error, so a checkpoint of an unsupported layout never converts silently into partly random
towers. ``tools/model_converters/openclip2silc.py`` is the command-line front end.
"""
import os.path as osp
import re
import zipfile
from typing import Dict, Mapping, Optional, Tuple

import torch
from torch import Tensor

from silc_seg.utils.checkpoint import list_keys, revise_key, torch_load_weights_only

# Metadata entries of OpenAI's JIT archives and non-persistent buffers of old OpenCLIP versions.
IGNORED_OPENCLIP_KEYS = ('input_resolution', 'context_length', 'vocab_size', 'attn_mask',
                         'text.attn_mask')

# Block parameter names of OpenCLIP's ResidualAttentionBlock and timm's Block -> ours.
_OPENCLIP_BLOCK_NAMES = {
    'ln_1.': 'ln_1.',
    'ln_2.': 'ln_2.',
    'attn.in_proj_weight': 'attn.qkv.weight',
    'attn.in_proj_bias': 'attn.qkv.bias',
    'attn.out_proj.': 'attn.proj.',
    'mlp.c_fc.': 'mlp.fc1.',
    'mlp.c_proj.': 'mlp.fc2.',
    'ls_1.gamma': 'ls_1.gamma',
    'ls_2.gamma': 'ls_2.gamma',
}
_TIMM_BLOCK_NAMES = {
    'norm1.': 'ln_1.',
    'norm2.': 'ln_2.',
    'attn.qkv.': 'attn.qkv.',
    'attn.proj.': 'attn.proj.',
    'mlp.fc1.': 'mlp.fc1.',
    'mlp.fc2.': 'mlp.fc2.',
    'ls1.gamma': 'ls_1.gamma',
    'ls2.gamma': 'ls_2.gamma',
}


def _rename_block_param(name: str, names: Mapping[str, str]) -> Optional[str]:
    for source, target in names.items():
        if name.startswith(source):
            return target + name[len(source):]
    return None


def _openclip_key(key: str, value: Tensor) -> Optional[Tuple[str, Tensor]]:
    """Our name and value of one OpenCLIP / OpenAI key; None when unknown."""
    simple = {
        'logit_scale': 'contrastive_loss.logit_scale',
        'logit_bias': 'contrastive_loss.logit_bias',
        'visual.conv1.weight': 'image_encoder.patch_embed.projection.weight',
        'visual.trunk.patch_embed.proj.weight': 'image_encoder.patch_embed.projection.weight',
        'visual.trunk.patch_embed.proj.bias': 'image_encoder.patch_embed.projection.bias',
        'visual.trunk.cls_token': 'image_encoder.cls_token',
        'visual.trunk.pos_embed': 'image_encoder.pos_embed',
        'visual.head.proj.weight': 'image_encoder.proj.weight',
        'visual.head.proj.bias': 'image_encoder.proj.bias',
        'text.text_projection.weight': 'text_encoder.text_projection.weight',
        'text.text_projection.bias': 'text_encoder.text_projection.bias',
    }
    if key in simple:
        return simple[key], value
    if key == 'visual.class_embedding':
        return 'image_encoder.cls_token', value.reshape(1, 1, -1)
    if key == 'visual.positional_embedding':
        return 'image_encoder.pos_embed', value.unsqueeze(0)
    if key == 'visual.proj':
        return 'image_encoder.proj.weight', value.t()
    if key in ('text_projection', 'text.text_projection'):
        return 'text_encoder.text_projection.weight', value.t()
    patterns = [
        (r'visual\.(ln_pre|ln_post)\.(weight|bias)', r'image_encoder.\1.\2'),
        (r'visual\.trunk\.norm_pre\.(weight|bias)', r'image_encoder.ln_pre.\1'),
        (r'visual\.trunk\.norm\.(weight|bias)', r'image_encoder.ln_post.\1'),
        (r'visual\.trunk\.attn_pool\.(.+)', r'image_encoder.attn_pool.\1'),
        (r'(?:text\.)?token_embedding\.weight', 'text_encoder.token_embedding.weight'),
        (r'(?:text\.)?positional_embedding', 'text_encoder.positional_embedding'),
        (r'(?:text\.)?ln_final\.(weight|bias)', r'text_encoder.ln_final.\1'),
    ]
    for pattern, target in patterns:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, target, key), value
    blocks = [
        (r'visual\.transformer\.resblocks\.(\d+)\.(.+)', 'image_encoder', _OPENCLIP_BLOCK_NAMES),
        (r'visual\.trunk\.blocks\.(\d+)\.(.+)', 'image_encoder', _TIMM_BLOCK_NAMES),
        (r'(?:text\.)?transformer\.resblocks\.(\d+)\.(.+)', 'text_encoder', _OPENCLIP_BLOCK_NAMES),
    ]
    for pattern, tower, names in blocks:
        match = re.fullmatch(pattern, key)
        if match:
            name = _rename_block_param(match.group(2), names)
            return (f'{tower}.blocks.{match.group(1)}.{name}', value) if name else None
    return None


def unwrap_state_dict(checkpoint: Mapping) -> Dict[str, Tensor]:
    """The weights of a checkpoint: its ``state_dict`` entry if any, without the
    ``module.`` prefix of (Distributed)DataParallel training checkpoints."""
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, Mapping):
        raise TypeError(f'expected a state dict, got {type(state_dict).__name__}')
    return {revise_key(key): value for key, value in state_dict.items()}


def convert_openclip_state_dict(state_dict: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """Convert an OpenAI CLIP / OpenCLIP state dict (OpenCLIP ``CLIP`` with its own vision
    tower, or ``CustomTextCLIP`` with a timm ViT trunk such as ``ViT-B-16-SigLIP``).

    Args:
        state_dict (Mapping[str, Tensor]): the source weights (``module.`` prefixes and a
            ``state_dict`` wrapper are removed first).

    Returns:
        dict[str, Tensor]: ``image_encoder.*``, ``text_encoder.*`` and ``contrastive_loss.*``.
    """
    state_dict = unwrap_state_dict(state_dict)
    converted, unknown = {}, []
    for key, value in state_dict.items():
        if key in IGNORED_OPENCLIP_KEYS:
            continue
        renamed = _openclip_key(key, value)
        if renamed is None:
            unknown.append(key)
            continue
        name, tensor = renamed
        converted[name] = tensor.detach().contiguous()
    if unknown:
        raise KeyError(f'{len(unknown)} key(s) of the source checkpoint have no SILC '
                       f'equivalent (unsupported architecture?): {list_keys(sorted(unknown))}')
    for tower in ('image_encoder.', 'text_encoder.'):
        if not any(k.startswith(tower) for k in converted):
            raise KeyError(f'no {tower[:-1]} weights found: this does not look like an OpenAI '
                           f'CLIP / OpenCLIP state dict (keys: {list_keys(sorted(state_dict))})')
    return converted


# Entries OpenAI's released checkpoints hold and open_clip's do not (their TorchScript archives
# keep them, and so does a state dict saved from such an archive).
OPENAI_METADATA_KEYS = ('input_resolution', 'context_length', 'vocab_size')


def choose_openclip_model(model: str, state_dict: Mapping[str, Tensor],
                          is_openai_jit: bool) -> Tuple[str, str]:
    """The model to convert for, and one line that says which activation it has and why.

    The weights of GELU (open_clip's LAION / DataComp) and QuickGELU (OpenAI) CLIP models have the
    same keys and shapes, so the activation comes from the model name, except that OpenAI's files
    (a TorchScript archive, or a state dict with OpenAI's metadata entries) always get QuickGELU.

    Args:
        model (str): the ``--model`` name.
        state_dict (Mapping[str, Tensor]): the source weights.
        is_openai_jit (bool): whether the file was an OpenAI TorchScript archive.

    Returns:
        tuple[str, str]: the model name and the notice.
    """
    from .towers import OPENAI_MODEL_NAMES, config_path
    openai_keys = [key for key in OPENAI_METADATA_KEYS if key in state_dict]
    if model in OPENAI_MODEL_NAMES and (is_openai_jit or openai_keys):
        what = ('an OpenAI TorchScript archive'
                if is_openai_jit else f'an OpenAI state dict (it holds {", ".join(openai_keys)})')
        chosen = OPENAI_MODEL_NAMES[model]
        return chosen, (f'the source is {what}: using the QuickGELU towers of {chosen} '
                        '(OpenAI trained CLIP with QuickGELU)')
    from mmengine.config import Config

    from silc_seg.utils.config import get_config_path
    act = Config.fromfile(get_config_path(config_path(model))).image_encoder.get('act', 'gelu')
    notice = f'activation {act}: the activation of open_clip\'s {model}'
    quick = {plain: quick for plain, quick in OPENAI_MODEL_NAMES.items()}
    if model in quick:
        notice += (' (the LAION / DataComp weights). The weights do not show the activation; '
                   f'OpenAI\'s released CLIP weights need QuickGELU: --model {quick[model]}')
    return model, notice


def load_openclip_checkpoint(path: str) -> Tuple[Dict[str, Tensor], bool]:
    """Read an OpenCLIP / OpenAI checkpoint: ``.safetensors``, a ``torch.save`` file (loaded
    with ``weights_only=True``) or an OpenAI TorchScript archive.

    Returns:
        tuple: the state dict and whether the file was an OpenAI TorchScript archive.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path), False
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            is_jit = any(name.endswith('/constants.pkl') for name in archive.namelist())
        if is_jit:
            return torch.jit.load(path, map_location='cpu').state_dict(), True
    return unwrap_state_dict(torch_load_weights_only(path, map_location='cpu')), False
