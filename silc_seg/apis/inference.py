from pathlib import Path
from typing import Optional, Union

import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings

from silc_seg.registry import MODELS
from silc_seg.utils.checkpoint import load_model_checkpoint
from silc_seg.utils.config import merge_cfg_options


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> nn.Module:
    """Build ``config.model`` and load a checkpoint into it, ready for inference.

    Args:
        config (str | Path | Config): Config file path or loaded config.
        checkpoint (str, optional): ``.pth`` (MMEngine checkpoint or bare state dict, loaded
            weights-only) or ``.safetensors`` file, loaded by
            :func:`~silc_seg.utils.load_model_checkpoint`. None keeps the initialized weights.
            Defaults to None.
        device (str): Defaults to ``'cpu'``.
        cfg_options (dict, optional): Overrides merged into the config; keys are checked as
            ``--cfg-options`` are (:func:`~silc_seg.utils.merge_cfg_options`).

    Returns:
        nn.Module: The model in eval mode on ``device``, with ``cfg`` set to the config. For
        SILC models: ``encode_image(images, normalize=True)``,
        ``encode_text(token_ids, normalize=True)``, ``tokenize(texts)``.

    Raises:
        CheckpointMismatchError: The checkpoint lacks weights the model needs, or has tensors
            of another shape (the message lists the first keys with both shapes). Extra
            checkpoint weights (e.g. a pretraining teacher when building a contrastive-only
            model) are skipped with a note.
        CheckpointRefusedError: The file holds pickled objects other than weights.
    """
    if isinstance(config, (str, Path)):
        config = Config.fromfile(str(config))
    elif not isinstance(config, Config):
        raise TypeError(f'config must be a file path or a Config, got {type(config).__name__}')
    merge_cfg_options(config, cfg_options)
    if config.get('custom_imports'):
        import_modules_from_strings(**config.custom_imports)
    init_default_scope(config.get('default_scope', 'mmseg'))
    model = MODELS.build(config.model)
    if checkpoint is not None:
        load_model_checkpoint(model, checkpoint)
    model.cfg = config
    return model.to(device).eval()
