"""Conversion of public OpenAI CLIP / OpenCLIP / SigLIP (big_vision) weights to SILC towers.

The converted state dicts use the checkpoint key convention of ``docs/design.md``:
``image_encoder.*`` (:class:`~silc_seg.models.backbones.SILCVisionTransformer`),
``text_encoder.*`` (:class:`~silc_seg.models.text_encoders.SILCTextTransformer`) and
``contrastive_loss.logit_scale`` / ``contrastive_loss.logit_bias``. Every source key is either
converted or explicitly ignored (OpenAI's JIT metadata); anything else is an error, so a
checkpoint of an unsupported layout never converts silently into partly random towers.

``tools/model_converters/openclip2silc.py`` and ``bigvision2silc.py`` are the command-line
front ends; :data:`MODEL_CONFIGS` names the tower config of each supported model.
"""
import os.path as osp
import re
import zipfile
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

# Supported model names -> arch config (relative to the repository root).
MODEL_CONFIGS = {
    'ViT-B-16': 'configs/_base_/models/openclip_vit-b-16.py',
    'ViT-B-16-quickgelu': 'configs/_base_/models/openclip_vit-b-16-quickgelu.py',
    'ViT-B-32': 'configs/_base_/models/openclip_vit-b-32.py',
    'ViT-B-32-quickgelu': 'configs/_base_/models/openclip_vit-b-32-quickgelu.py',
    'ViT-L-14': 'configs/_base_/models/openclip_vit-l-14.py',
    'ViT-L-14-quickgelu': 'configs/_base_/models/openclip_vit-l-14-quickgelu.py',
    'ViT-B-16-SigLIP': 'configs/_base_/models/siglip_vit-b-16.py',
}
# OpenAI's released CLIP models were trained with QuickGELU.
OPENAI_MODEL_NAMES = {
    'ViT-B-16': 'ViT-B-16-quickgelu',
    'ViT-B-32': 'ViT-B-32-quickgelu',
    'ViT-L-14': 'ViT-L-14-quickgelu',
}
# Metadata entries of OpenAI's JIT archives and non-persistent buffers of old OpenCLIP versions.
IGNORED_OPENCLIP_KEYS = ('input_resolution', 'context_length', 'vocab_size', 'attn_mask',
                         'text.attn_mask')

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

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


def config_path(model_name: str) -> str:
    """Arch config (relative to the repository root) of a supported model name."""
    if model_name not in MODEL_CONFIGS:
        raise ValueError(f'unsupported model {model_name!r}; choose from {sorted(MODEL_CONFIGS)}')
    return MODEL_CONFIGS[model_name]


def _listing(keys: List[str], max_listed: int = 20) -> str:
    more = f' ... and {len(keys) - max_listed} more' if len(keys) > max_listed else ''
    return ', '.join(keys[:max_listed]) + more


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
        (r'(?:text\.)?transformer\.resblocks\.(\d+)\.(.+)', 'text_encoder',
         _OPENCLIP_BLOCK_NAMES),
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
    if state_dict and all(k.startswith('module.') for k in state_dict):
        state_dict = {k[len('module.'):]: v for k, v in state_dict.items()}
    return dict(state_dict)


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
                       f'equivalent (unsupported architecture?): {_listing(sorted(unknown))}')
    for tower in ('image_encoder.', 'text_encoder.'):
        if not any(k.startswith(tower) for k in converted):
            raise KeyError(f'no {tower[:-1]} weights found: this does not look like an OpenAI '
                           f'CLIP / OpenCLIP state dict (keys: {_listing(sorted(state_dict))})')
    return converted


class _NpzReader:
    """Reads big_vision arrays by name and remembers which were used."""

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        self.root = 'params/' if any(k.startswith('params/') for k in arrays) else ''
        self.arrays = arrays
        self.used = set()

    def __contains__(self, name: str) -> bool:
        return self.root + name in self.arrays

    def get(self, name: str, index: Optional[int] = None) -> Tensor:
        key = self.root + name
        if key not in self.arrays:
            raise KeyError(f'big_vision checkpoint lacks {key!r}')
        self.used.add(key)
        array = np.asarray(self.arrays[key])
        if index is not None:
            array = array[index]
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    def unused(self) -> List[str]:
        return sorted(set(self.arrays) - self.used)


def _dense_kernel(kernel: Tensor) -> Tensor:
    """Flax ``Dense`` kernel ``(in, out)`` -> torch ``Linear`` weight ``(out, in)``."""
    return kernel.t()


def _heads_in_kernel(kernel: Tensor) -> Tensor:
    """Flax attention query/key/value kernel ``(D, heads, head_dim)`` -> ``(D', D)``."""
    return kernel.reshape(kernel.shape[0], -1).t()


def _heads_out_kernel(kernel: Tensor) -> Tensor:
    """Flax attention output kernel ``(heads, head_dim, D)`` -> ``(D, D')``."""
    return kernel.reshape(-1, kernel.shape[-1]).t()


def _layer_norm(reader: _NpzReader, prefix: str, target: str, out: dict,
                index: Optional[int] = None):
    out[target + '.weight'] = reader.get(prefix + '/scale', index)
    out[target + '.bias'] = reader.get(prefix + '/bias', index)


def _dense(reader: _NpzReader, prefix: str, target: str, out: dict,
           index: Optional[int] = None, kernel_fn: Callable = _dense_kernel):
    out[target + '.weight'] = kernel_fn(reader.get(prefix + '/kernel', index))
    out[target + '.bias'] = reader.get(prefix + '/bias', index).reshape(-1)


def _big_vision_encoder(reader: _NpzReader, prefix: str, tower: str, out: dict) -> int:
    """Convert the blocks under ``prefix`` (``.../encoderblock_{i}`` or the stacked
    ``.../encoderblock`` of ``scan=True`` models); returns the number of blocks."""
    if prefix + 'encoderblock/LayerNorm_0/scale' in reader:
        depth = reader.arrays[reader.root + prefix + 'encoderblock/LayerNorm_0/scale'].shape[0]
        blocks = [(prefix + 'encoderblock/', i) for i in range(depth)]
    else:
        depth = 0
        while f'{prefix}encoderblock_{depth}/LayerNorm_0/scale' in reader:
            depth += 1
        blocks = [(f'{prefix}encoderblock_{i}/', None) for i in range(depth)]
    if depth == 0:
        raise KeyError(f'no transformer blocks under {reader.root + prefix!r}')
    for i, (block, index) in enumerate(blocks):
        target = f'{tower}.blocks.{i}'
        attention = block + 'MultiHeadDotProductAttention_0/'
        _layer_norm(reader, block + 'LayerNorm_0', target + '.ln_1', out, index)
        out[target + '.attn.qkv.weight'] = torch.cat([
            _heads_in_kernel(reader.get(attention + name + '/kernel', index))
            for name in ('query', 'key', 'value')
        ])
        out[target + '.attn.qkv.bias'] = torch.cat([
            reader.get(attention + name + '/bias', index).reshape(-1)
            for name in ('query', 'key', 'value')
        ])
        _dense(reader, attention + 'out', target + '.attn.proj', out, index, _heads_out_kernel)
        _layer_norm(reader, block + 'LayerNorm_1', target + '.ln_2', out, index)
        _dense(reader, block + 'MlpBlock_0/Dense_0', target + '.mlp.fc1', out, index)
        _dense(reader, block + 'MlpBlock_0/Dense_1', target + '.mlp.fc2', out, index)
    return depth


def convert_big_vision_arrays(arrays: Mapping[str, np.ndarray]) -> Dict[str, Tensor]:
    """Convert a big_vision two-tower (SigLIP / SILC) checkpoint, as released in ``.npz``
    files (keys ``img/...``, ``txt/...``, ``t``, ``b``, optionally under ``params/``).

    Args:
        arrays (Mapping[str, np.ndarray]): the npz arrays by name.

    Returns:
        dict[str, Tensor]: ``image_encoder.*``, ``text_encoder.*`` and ``contrastive_loss.*``.
    """
    reader = _NpzReader(arrays)
    out = {}
    # Image tower (big_vision ViT).
    kernel = reader.get('img/embedding/kernel')  # (p, p, 3, D)
    out['image_encoder.patch_embed.projection.weight'] = kernel.permute(3, 2, 0, 1).contiguous()
    out['image_encoder.patch_embed.projection.bias'] = reader.get('img/embedding/bias')
    if 'img/cls' in reader:
        out['image_encoder.cls_token'] = reader.get('img/cls').reshape(1, 1, -1)
    out['image_encoder.pos_embed'] = reader.get('img/pos_embedding')
    _big_vision_encoder(reader, 'img/Transformer/', 'image_encoder', out)
    _layer_norm(reader, 'img/Transformer/encoder_norm', 'image_encoder.ln_post', out)
    if 'img/MAPHead_0/probe' in reader:
        head, pool = 'img/MAPHead_0/', 'image_encoder.attn_pool'
        attention = head + 'MultiHeadDotProductAttention_0/'
        out[pool + '.latent'] = reader.get(head + 'probe').reshape(1, 1, -1)
        _dense(reader, attention + 'query', pool + '.q', out, kernel_fn=_heads_in_kernel)
        out[pool + '.kv.weight'] = torch.cat([
            _heads_in_kernel(reader.get(attention + name + '/kernel')) for name in ('key', 'value')
        ])
        out[pool + '.kv.bias'] = torch.cat(
            [reader.get(attention + name + '/bias').reshape(-1) for name in ('key', 'value')])
        _dense(reader, attention + 'out', pool + '.proj', out, kernel_fn=_heads_out_kernel)
        _layer_norm(reader, head + 'LayerNorm_0', pool + '.norm', out)
        _dense(reader, head + 'MlpBlock_0/Dense_0', pool + '.mlp.fc1', out)
        _dense(reader, head + 'MlpBlock_0/Dense_1', pool + '.mlp.fc2', out)
    if 'img/head/kernel' in reader:
        _dense(reader, 'img/head', 'image_encoder.proj', out)
    # Text tower.
    out['text_encoder.token_embedding.weight'] = reader.get('txt/Embed_0/embedding')
    out['text_encoder.positional_embedding'] = reader.get('txt/pos_embedding').reshape(
        -1, out['text_encoder.token_embedding.weight'].shape[1])
    _big_vision_encoder(reader, 'txt/Encoder_0/', 'text_encoder', out)
    _layer_norm(reader, 'txt/Encoder_0/encoder_norm', 'text_encoder.ln_final', out)
    if 'txt/head/kernel' in reader:
        _dense(reader, 'txt/head', 'text_encoder.text_projection', out)
    out['contrastive_loss.logit_scale'] = reader.get('t').reshape(())
    if 'b' in reader:
        out['contrastive_loss.logit_bias'] = reader.get('b').reshape(())
    unused = reader.unused()
    if unused:
        raise KeyError(f'{len(unused)} array(s) of the big_vision checkpoint have no SILC '
                       f'equivalent (unsupported architecture?): {_listing(unused)}')
    return out


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
    return unwrap_state_dict(torch.load(path, map_location='cpu', weights_only=True)), False


def save_state_dict(state_dict: Mapping[str, Tensor], path: str, meta: Optional[dict] = None):
    """Save converted weights: ``.safetensors`` (with ``meta`` as string metadata) or a
    ``torch.save`` file ``{'state_dict': ..., 'meta': ...}`` for any other extension."""
    state_dict = {k: v.contiguous() for k, v in state_dict.items()}
    if path.endswith('.safetensors'):
        from safetensors.torch import save_file
        save_file(state_dict, path, metadata={k: str(v) for k, v in (meta or {}).items()})
    else:
        torch.save(dict(state_dict=state_dict, meta=dict(meta or {})), path)


def build_towers(config_file: str) -> Dict[str, torch.nn.Module]:
    """Build the modules an arch config defines under the checkpoint prefixes:
    ``image_encoder``, ``text_encoder`` and (from ``model``) ``contrastive_loss``."""
    from mmengine.config import Config

    from silc_seg.registry import MODELS
    if not osp.isabs(config_file):
        config_file = osp.join(REPO_ROOT, config_file)
    cfg = Config.fromfile(config_file)
    modules = dict(image_encoder=MODELS.build(cfg.image_encoder),
                   text_encoder=MODELS.build(cfg.text_encoder))
    if 'contrastive_loss' in cfg.model:
        modules['contrastive_loss'] = MODELS.build(cfg.model.contrastive_loss)
    return modules


def verify_state_dict(state_dict: Mapping[str, Tensor],
                      modules: Mapping[str, torch.nn.Module]) -> None:
    """Check that converted weights load exactly (same keys, same shapes) into ``modules``
    (by prefix) and load them; raise with the missing / unexpected keys otherwise."""
    expected = {f'{prefix}.{k}': v for prefix, module in modules.items()
                for k, v in module.state_dict().items()}
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = sorted(f'{k}: {tuple(state_dict[k].shape)} vs {tuple(v.shape)}'
                         for k, v in expected.items()
                         if k in state_dict and state_dict[k].shape != v.shape)
    if missing or unexpected or wrong_shape:
        raise KeyError(
            'converted weights do not match the arch config: '
            f'{len(missing)} missing key(s): {_listing(missing)}; '
            f'{len(unexpected)} unexpected key(s): {_listing(unexpected)}; '
            f'{len(wrong_shape)} shape mismatch(es) (checkpoint vs config): '
            f'{_listing(wrong_shape)}')
    for prefix, module in modules.items():
        module.load_state_dict({k[len(prefix) + 1:]: v for k, v in state_dict.items()
                                if k.startswith(prefix + '.')})

