"""Conversion of big_vision two-tower checkpoints (SigLIP / SILC ``.npz``) to SILC towers.

Every array is either converted or an error, so a checkpoint of an unsupported layout never
converts silently into partly random towers. ``tools/model_converters/bigvision2silc.py`` is the
command-line front end.
"""
from typing import Callable, Dict, List, Mapping, Optional

import numpy as np
import torch
from torch import Tensor

from silc_seg.utils.checkpoint import list_keys


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


def _layer_norm(reader: _NpzReader,
                prefix: str,
                target: str,
                out: dict,
                index: Optional[int] = None):
    out[target + '.weight'] = reader.get(prefix + '/scale', index)
    out[target + '.bias'] = reader.get(prefix + '/bias', index)


def _dense(reader: _NpzReader,
           prefix: str,
           target: str,
           out: dict,
           index: Optional[int] = None,
           kernel_fn: Callable = _dense_kernel):
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
                       f'equivalent (unsupported architecture?): {list_keys(unused)}')
    return out
