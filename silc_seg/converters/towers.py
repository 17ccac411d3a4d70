"""The SILC towers that converted weights are checked against and saved for.

Converted state dicts use the checkpoint key convention of ``docs/design.md``:
``image_encoder.*`` (:class:`~silc_seg.models.backbones.SILCVisionTransformer`),
``text_encoder.*`` (:class:`~silc_seg.models.text_encoders.SILCTextTransformer`) and
``contrastive_loss.logit_scale`` / ``contrastive_loss.logit_bias``. :data:`MODEL_CONFIGS` names
the tower config of each supported model; the configs ship with the package
(:func:`silc_seg.utils.get_config_path`).
"""
import os
import os.path as osp
from typing import Dict, Mapping, Optional

import torch
from torch import Tensor

from silc_seg.utils.checkpoint import list_keys
from silc_seg.utils.config import get_config_path

# Supported model names -> arch config (as named in the project's configs folder).
MODEL_CONFIGS = {
    'ViT-B-16': 'configs/_base_/models/openclip_vit-b-16.py',
    'ViT-B-16-quickgelu': 'configs/_base_/models/openclip_vit-b-16-quickgelu.py',
    'ViT-B-32': 'configs/_base_/models/openclip_vit-b-32.py',
    'ViT-B-32-quickgelu': 'configs/_base_/models/openclip_vit-b-32-quickgelu.py',
    'ViT-L-14': 'configs/_base_/models/openclip_vit-l-14.py',
    'ViT-L-14-quickgelu': 'configs/_base_/models/openclip_vit-l-14-quickgelu.py',
    'ViT-B-16-SigLIP': 'configs/_base_/models/siglip_vit-b-16.py',
}
# The released fixed-resolution SigLIP 2 models (open_clip names) -> arch config.
SIGLIP2_MODEL_CONFIGS = {
    'ViT-B-32-SigLIP2-256': 'configs/_base_/models/siglip2_vit-b-32-256.py',
    'ViT-B-16-SigLIP2': 'configs/_base_/models/siglip2_vit-b-16.py',
    'ViT-B-16-SigLIP2-256': 'configs/_base_/models/siglip2_vit-b-16-256.py',
    'ViT-B-16-SigLIP2-384': 'configs/_base_/models/siglip2_vit-b-16-384.py',
    'ViT-B-16-SigLIP2-512': 'configs/_base_/models/siglip2_vit-b-16-512.py',
    'ViT-L-16-SigLIP2-256': 'configs/_base_/models/siglip2_vit-l-16-256.py',
    'ViT-L-16-SigLIP2-384': 'configs/_base_/models/siglip2_vit-l-16-384.py',
    'ViT-L-16-SigLIP2-512': 'configs/_base_/models/siglip2_vit-l-16-512.py',
    'ViT-SO400M-14-SigLIP2': 'configs/_base_/models/siglip2_vit-so400m-14.py',
    'ViT-SO400M-14-SigLIP2-378': 'configs/_base_/models/siglip2_vit-so400m-14-378.py',
    'ViT-SO400M-16-SigLIP2-256': 'configs/_base_/models/siglip2_vit-so400m-16-256.py',
    'ViT-SO400M-16-SigLIP2-384': 'configs/_base_/models/siglip2_vit-so400m-16-384.py',
    'ViT-SO400M-16-SigLIP2-512': 'configs/_base_/models/siglip2_vit-so400m-16-512.py',
    'ViT-gopt-16-SigLIP2-256': 'configs/_base_/models/siglip2_vit-gopt-16-256.py',
    'ViT-gopt-16-SigLIP2-384': 'configs/_base_/models/siglip2_vit-gopt-16-384.py',
}
MODEL_CONFIGS.update(SIGLIP2_MODEL_CONFIGS)
# SigLIP 2 NaFlex models: timm NaFlexVit trunks (siglip2silc.py converts them).
SIGLIP2_NAFLEX_MODEL_CONFIGS = {
    'ViT-B-16-SigLIP2-naflex': 'configs/_base_/models/siglip2_vit-b-16-naflex.py',
    'ViT-SO400M-16-SigLIP2-naflex': 'configs/_base_/models/siglip2_vit-so400m-16-naflex.py',
}
# OpenAI's released CLIP models were trained with QuickGELU.
OPENAI_MODEL_NAMES = {
    'ViT-B-16': 'ViT-B-16-quickgelu',
    'ViT-B-32': 'ViT-B-32-quickgelu',
    'ViT-L-14': 'ViT-L-14-quickgelu',
}


def config_path(model_name: str) -> str:
    """Tower config of a supported model name, as named in the project (``configs/...``)."""
    if model_name not in MODEL_CONFIGS:
        raise ValueError(f'unsupported model {model_name!r}; choose from {sorted(MODEL_CONFIGS)}')
    return MODEL_CONFIGS[model_name]


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
    cfg = Config.fromfile(config_file if osp.isabs(config_file) else get_config_path(config_file))
    modules = dict(
        image_encoder=MODELS.build(cfg.image_encoder), text_encoder=MODELS.build(cfg.text_encoder))
    if 'contrastive_loss' in cfg.model:
        modules['contrastive_loss'] = MODELS.build(cfg.model.contrastive_loss)
    return modules


def verify_state_dict(state_dict: Mapping[str, Tensor], modules: Mapping[str,
                                                                         torch.nn.Module]) -> None:
    """Check that converted weights load exactly (same keys, same shapes) into ``modules``
    (by prefix) and load them; raise with the missing / unexpected keys otherwise."""
    expected = {
        f'{prefix}.{k}': v
        for prefix, module in modules.items()
        for k, v in module.state_dict().items()
    }
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = sorted(f'{k}: {tuple(state_dict[k].shape)} vs {tuple(v.shape)}'
                         for k, v in expected.items()
                         if k in state_dict and state_dict[k].shape != v.shape)
    if missing or unexpected or wrong_shape:
        raise KeyError('converted weights do not match the arch config: '
                       f'{len(missing)} missing key(s): {list_keys(missing)}; '
                       f'{len(unexpected)} unexpected key(s): {list_keys(unexpected)}; '
                       f'{len(wrong_shape)} shape mismatch(es) (checkpoint vs config): '
                       f'{list_keys(wrong_shape)}')
    for prefix, module in modules.items():
        module.load_state_dict({
            k[len(prefix) + 1:]: v
            for k, v in state_dict.items() if k.startswith(prefix + '.')
        })


def save_converted(state_dict: Mapping[str, Tensor], towers: Mapping[str, torch.nn.Module],
                   src: str, dst: str, model: Optional[str], config: str) -> None:
    """Check converted weights against their towers and save them with their provenance;
    print how many tensors went where and, as the last line, the arch config.

    Args:
        state_dict (Mapping[str, Tensor]): the converted weights.
        towers (Mapping[str, nn.Module]): the modules (by key prefix) they must load into
            exactly (:func:`verify_state_dict`).
        src (str): the source checkpoint (its file name goes into the metadata).
        dst (str): the output file (:func:`save_state_dict`); its folder is made.
        model (str, optional): the model name for the metadata.
        config (str): the arch config of the towers.
    """
    verify_state_dict(state_dict, towers)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    save_state_dict(
        state_dict, dst, meta=dict(source=osp.basename(src), model=model, config=config))
    print(f'saved {len(state_dict)} tensors to {dst}; model config:')
    print(config)
