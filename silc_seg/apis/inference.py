import warnings
from pathlib import Path
from typing import Optional, Union

import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model
from mmengine.utils import import_modules_from_strings

from silc_seg.registry import MODELS
from silc_seg.utils.checkpoint import check_state_dict_keys


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> nn.Module:
    """Build ``config.model`` and load a checkpoint into it, ready for inference.

    Args:
        config (str | Path | Config): Config file path or loaded config.
        checkpoint (str, optional): ``.pth`` (MMEngine checkpoint or bare state dict, loaded
            with ``weights_only=True``) or ``.safetensors`` file. None keeps the initialized
            weights. Defaults to None.
        device (str): Defaults to ``'cpu'``.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        nn.Module: The model in eval mode on ``device``, with ``cfg`` set to the config. For
        SILC models: ``encode_image(images, normalize=True)``,
        ``encode_text(token_ids, normalize=True)``, ``tokenize(texts)``.

    Raises:
        KeyError: The checkpoint lacks weights the model needs (the message lists the missing
            and unexpected keys). Extra checkpoint weights (e.g. a pretraining teacher when
            building a contrastive-only model) are skipped with a warning.
    """
    if isinstance(config, (str, Path)):
        config = Config.fromfile(str(config))
    elif not isinstance(config, Config):
        raise TypeError(f'config must be a file path or a Config, got {type(config).__name__}')
    if cfg_options:
        config.merge_from_dict(cfg_options)
    if config.get('custom_imports'):
        import_modules_from_strings(**config.custom_imports)
    init_default_scope(config.get('default_scope', 'mmseg'))
    model = MODELS.build(config.model)
    if checkpoint is not None:
        load_model_checkpoint(model, checkpoint)
    model.cfg = config
    return model.to(device).eval()


def load_model_checkpoint(model: nn.Module, filename: str) -> dict:
    """Load the weights of ``filename`` into ``model``, failing clearly on a mismatch.

    Args:
        model (nn.Module): Target model.
        filename (str): Checkpoint path (see :func:`init_model`).

    Returns:
        dict: The loaded checkpoint.
    """
    checkpoint = _load_checkpoint(filename, map_location='cpu')
    if not isinstance(checkpoint, dict):
        raise TypeError(f'{filename} holds a {type(checkpoint).__name__}, not a state dict')
    state_dict = checkpoint.get('state_dict', checkpoint)
    # Checkpoints saved from a DistributedDataParallel-wrapped model.
    state_dict = {key[len('module.'):] if key.startswith('module.') else key: value
                  for key, value in state_dict.items()}
    unexpected = check_state_dict_keys(model.state_dict().keys(), state_dict.keys(),
                                       filename=str(filename))
    if unexpected:
        warnings.warn(f'{filename}: skipped {len(unexpected)} weight(s) the model does not use: '
                      f'{", ".join(unexpected[:10])}{" ..." if len(unexpected) > 10 else ""}')
        state_dict = {key: value for key, value in state_dict.items() if key not in unexpected}
    _load_checkpoint_to_model(model, state_dict, strict=True)
    dataset_meta = checkpoint.get('meta', {}).get('dataset_meta') if isinstance(
        checkpoint.get('meta'), dict) else None
    if dataset_meta is not None:
        model.dataset_meta = dataset_meta
    return checkpoint
