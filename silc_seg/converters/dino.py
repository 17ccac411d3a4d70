"""Conversion of the public DINO / DINOv2 backbone checkpoints to :class:`DINOViT` weights.

Source layouts: facebookresearch/dino ``vision_transformer.py`` (``dino_vitbase8_pretrain.pth``,
the hub's ``dino_vitb8``) and facebookresearch/dinov2 ``dinov2/models/vision_transformer.py``
(``dinov2_vitb14_pretrain.pth``, ``dinov2_vitb14_reg4_pretrain.pth``). Their block names are
timm's; what differs is DINOv2's ``mask_token`` (unused at inference) and its registers, which
timm keeps as ``reg_token`` with no position embedding on the prefix tokens: the class token's
(never resized) position embedding is added to ``cls_token`` there, which is exact.
"""
from typing import Dict, Mapping

import torch
from torch import Tensor

from .openclip import unwrap_state_dict

# Hub name -> DINOViT config of the public checkpoint (architecture and position-embedding
# resize of the hub model: ``interpolate_offset`` / ``interpolate_antialias``).
DINO_MODELS = {
    'dino_vitb8':
    dict(arch='vit_base_patch8_224.dino', pos_embed_offset=0.1, pos_embed_antialias=False),
    'dino_vitb16':
    dict(arch='vit_base_patch16_224.dino', pos_embed_offset=0.1, pos_embed_antialias=False),
    'dinov2_vitb14':
    dict(arch='vit_base_patch14_dinov2', pos_embed_offset=0.1, pos_embed_antialias=False),
    'dinov2_vitb14_reg':
    dict(arch='vit_base_patch14_reg4_dinov2', pos_embed_offset=0.0, pos_embed_antialias=True),
}
# Keys of the public files that a feature tower does not use.
IGNORED_DINO_KEYS = ('mask_token', )
_TOP_LEVEL = ('cls_token', 'pos_embed', 'norm.weight', 'norm.bias', 'patch_embed.proj.weight',
              'patch_embed.proj.bias')
_BLOCK_PARAMS = ('norm1.weight', 'norm1.bias', 'attn.qkv.weight', 'attn.qkv.bias',
                 'attn.proj.weight', 'attn.proj.bias', 'ls1.gamma', 'norm2.weight', 'norm2.bias',
                 'mlp.fc1.weight', 'mlp.fc1.bias', 'mlp.fc2.weight', 'mlp.fc2.bias', 'ls2.gamma')


def _strip_wrappers(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """A DINO training checkpoint's ``teacher`` (or ``student``) backbone, without the
    ``module.`` / ``backbone.`` prefixes; its projection head (``head.*``) is dropped."""
    for name in ('teacher', 'student'):
        if isinstance(state_dict.get(name), Mapping):
            state_dict = unwrap_state_dict(state_dict[name])
            break
    out = {}
    for key, value in state_dict.items():
        key = key[len('backbone.'):] if key.startswith('backbone.') else key
        if not key.startswith('head.'):
            out[key] = value
    return out


def _is_block_key(key: str) -> bool:
    parts = key.split('.', 2)
    return (len(parts) == 3 and parts[0] == 'blocks' and parts[1].isdigit()
            and parts[2] in _BLOCK_PARAMS)


def convert_dino_state_dict(checkpoint: Mapping, prefix: str = '') -> Dict[str, Tensor]:
    """Convert a DINO / DINOv2 backbone state dict to :class:`DINOViT` keys.

    Args:
        checkpoint (Mapping): the public file's state dict (a ``state_dict`` wrapper, DDP
            ``module.`` prefixes and a DINO training checkpoint's ``teacher`` are unwrapped).
        prefix (str): prepended to every key, e.g. ``'dense_forward.vfm.'`` for the VFM of a
            ProxyCLIP segmentor.

    Returns:
        dict[str, Tensor]: ``{prefix}vit.*`` weights.

    Raises:
        KeyError: keys of another layout (e.g. DINOv2 ViT-g's SwiGLU ``mlp.w12``, or a
            classifier), so that nothing is dropped silently.
    """
    state_dict = _strip_wrappers(unwrap_state_dict(checkpoint))
    state_dict = {k: v for k, v in state_dict.items() if k not in IGNORED_DINO_KEYS}
    unknown = sorted(k for k in state_dict
                     if k not in _TOP_LEVEL and k != 'register_tokens' and not _is_block_key(k))
    missing = sorted(
        k for k in ('cls_token', 'pos_embed', 'patch_embed.proj.weight') if k not in state_dict)
    if unknown or missing:
        raise KeyError(f'not a DINO / DINOv2 ViT backbone: unknown keys {unknown[:8]}, '
                       f'missing keys {missing}')
    out = dict(state_dict)
    registers = out.pop('register_tokens', None)
    if registers is not None:
        # timm's register models (no_embed_class): prefix tokens carry no position embedding.
        pos_embed = out['pos_embed']
        out['cls_token'] = out['cls_token'] + pos_embed[:, :1].to(out['cls_token'].dtype)
        out['pos_embed'] = pos_embed[:, 1:]
        out['reg_token'] = registers
    return {f'{prefix}vit.{key}': torch.as_tensor(value) for key, value in out.items()}
