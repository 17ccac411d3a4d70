"""Checkpoints that load with ``torch.load(weights_only=True)``.

torch>=2.6 loads with ``weights_only=True`` by default, which refuses arbitrary pickled objects.
MMEngine 0.10.7 checkpoints hold two kinds of such objects in their ``message_hub`` (and possibly
in ``meta``): :class:`mmengine.logging.HistoryBuffer` instances and the numpy arrays/scalars inside
them. Numpy 2 dtypes unpickle through ``builtins.getattr``, and allow-listing ``getattr`` would
re-open arbitrary code execution, so instead of allow-listing those types we store them as plain
containers and tensors when saving (:func:`to_safe_checkpoint`) and rebuild them after loading
(:func:`from_safe_checkpoint`). :class:`~silc_seg.engine.hooks.SafeCheckpointHook` does both inside
the MMEngine runner; ``tools/train.py`` adds it to every config.
"""
import os.path as osp
from typing import Any, Iterable, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

_HISTORY_BUFFER_TAG = '__mmengine_history_buffer__'
_NDARRAY_TAG = '__numpy_ndarray__'

# Top-level checkpoint entries that may hold non-tensor Python objects. ``state_dict`` and
# ``optimizer`` only hold tensors and plain containers already.
_CONVERTED_ENTRIES = ('meta', 'message_hub')


def _encode(value: Any) -> Any:
    if isinstance(value, HistoryBuffer):
        log_history, count_history = value.data
        return {
            _HISTORY_BUFFER_TAG: True,
            'log_history': _encode(log_history),
            'count_history': _encode(count_history),
            'max_length': value.max_length,
        }
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in 'biuf':
            raise TypeError(
                f'cannot store a numpy array of dtype {value.dtype} in a weights-only '
                'checkpoint; convert it to a list or a tensor before saving')
        return {_NDARRAY_TAG: torch.from_numpy(np.ascontiguousarray(value))}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return type(value)((k, _encode(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_encode(v) for v in value)
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(_HISTORY_BUFFER_TAG) is True:
            return HistoryBuffer(
                _decode(value['log_history']).tolist(),
                _decode(value['count_history']).tolist(), value['max_length'])
        if _NDARRAY_TAG in value and len(value) == 1:
            return value[_NDARRAY_TAG].numpy()
        return type(value)((k, _decode(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_decode(v) for v in value)
    return value


def to_safe_checkpoint(checkpoint: dict) -> dict:
    """Replace, in place, the entries of an MMEngine checkpoint that ``weights_only`` loading
    refuses (history buffers, numpy values) with plain containers and tensors.

    Args:
        checkpoint (dict): The checkpoint dict built by ``Runner.save_checkpoint``.

    Returns:
        dict: The same dict, for chaining.
    """
    for key in _CONVERTED_ENTRIES:
        if key in checkpoint:
            checkpoint[key] = _encode(checkpoint[key])
    return checkpoint


def from_safe_checkpoint(checkpoint: dict) -> dict:
    """Inverse of :func:`to_safe_checkpoint`, in place.

    Args:
        checkpoint (dict): A checkpoint loaded with ``weights_only=True``.

    Returns:
        dict: The same dict, for chaining.
    """
    for key in _CONVERTED_ENTRIES:
        if key in checkpoint:
            checkpoint[key] = _decode(checkpoint[key])
    return checkpoint


def _load_local(filename: str, map_location=None) -> dict:
    """Local-file loader for MMEngine's ``CheckpointLoader``: ``.safetensors`` files through
    safetensors, everything else through ``torch.load`` with its (weights-only) default."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if filename.endswith('.safetensors'):
        from safetensors.torch import load_file
        device = map_location if isinstance(map_location, str) else 'cpu'
        return {'state_dict': load_file(filename, device=device)}
    return torch.load(filename, map_location=map_location, weights_only=True)


def register_checkpoint_loaders() -> None:
    """Let every MMEngine checkpoint load (``load_from``, ``init_cfg``, ``--resume``) read
    ``.safetensors`` files, and always load local files with ``weights_only=True``."""
    CheckpointLoader.register_scheme(prefixes='', loader=_load_local, force=True)


def check_state_dict_keys(model_keys: Iterable[str], checkpoint_keys: Iterable[str],
                          filename: str = 'checkpoint', allow_missing: bool = False,
                          max_listed: int = 20) -> List[str]:
    """Compare a model's state-dict keys with a checkpoint's and fail clearly on a mismatch.

    Keys of the checkpoint that the model does not have (a pretraining teacher, a distillation
    head) are allowed and returned; keys the model needs but the checkpoint lacks raise, because
    evaluating partly random weights gives meaningless numbers.

    Args:
        model_keys (Iterable[str]): ``model.state_dict().keys()``.
        checkpoint_keys (Iterable[str]): keys of the checkpoint's state dict.
        filename (str): checkpoint name used in the message.
        allow_missing (bool): only warn-worthy: return instead of raising on missing keys.
        max_listed (int): how many keys of each kind the message lists.

    Returns:
        list[str]: the unexpected (unused) checkpoint keys.
    """
    model_keys, checkpoint_keys = set(model_keys), set(checkpoint_keys)
    missing = sorted(model_keys - checkpoint_keys)
    unexpected = sorted(checkpoint_keys - model_keys)

    def listing(keys):
        more = f' ... and {len(keys) - max_listed} more' if len(keys) > max_listed else ''
        return ', '.join(keys[:max_listed]) + more

    if missing and not allow_missing:
        raise KeyError(
            f'{filename} does not match the model: {len(missing)} missing key(s): '
            f'{listing(missing)}; {len(unexpected)} unexpected key(s): {listing(unexpected)}. '
            'Check that the config describes the architecture the checkpoint was trained or '
            'converted for.')
    return unexpected
