"""One way to load checkpoints: weights-only unpickling, clear refusals, checked fits.

torch>=2.6 unpickles with ``weights_only=True``: only tensors, plain containers and types that are
explicitly admitted are rebuilt; a pickle that names anything else (``os.system``,
``builtins.eval``, ``getattr``...) is refused before anything runs. MMEngine 0.10.7 checkpoints
carry, in their ``message_hub`` (and possibly ``meta``), :class:`mmengine.logging.HistoryBuffer`
objects holding numpy arrays and scalars. :func:`load_checkpoint_file` admits exactly those types
(:func:`mmengine_safe_globals`: the history buffer, numpy's array/scalar constructors and the
numeric dtypes; not ``getattr``, not object arrays) and is registered as MMEngine's loader of
local files when :mod:`silc_seg` is imported. So ``load_from``, ``init_cfg`` checkpoints and
``--resume`` work with any tool that imports silc-seg (ours, mmseg's ``tools/train.py`` with
``custom_imports=dict(imports=['silc_seg'])``, ``mim train``), for ordinary MMEngine checkpoints.

:func:`load_model_checkpoint` is the single path by which ``init_model``, ``tools/test.py`` and
``tools/demo.py`` put weights into a model: missing keys and any tensor of the wrong shape are
errors naming the keys (and, when the checkpoint records the config it was made for, that config).
"""
import os.path as osp
import pickle
import re
import warnings
from collections import Counter, OrderedDict
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import (CheckpointLoader, _load_checkpoint,
                                        _load_checkpoint_to_model)

# Key renaming applied by MMEngine when weights go into a model: checkpoints saved from a
# (Distributed)DataParallel-wrapped model prefix every key with ``module.``.
REVISE_KEYS = [(r'^module\.', '')]


class CheckpointRefusedError(pickle.UnpicklingError):
    """A checkpoint asks for Python objects that weights-only loading does not rebuild."""


class CheckpointMismatchError(KeyError):
    """A checkpoint does not fit the model (missing keys or tensors of another shape)."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ''


def list_keys(keys: Sequence[str], max_listed: int = 20) -> str:
    """``'a, b, c ... and 7 more'``: the first ``max_listed`` of ``keys``."""
    keys = list(keys)
    more = f' ... and {len(keys) - max_listed} more' if len(keys) > max_listed else ''
    return ', '.join(keys[:max_listed]) + more


def _numeric_dtype_classes() -> List[type]:
    # numpy>=1.25 gives every dtype its own class (numpy.dtypes.Float64DType...), which the
    # unpickler must be allowed to build. Numeric kinds only: object / string / void arrays are
    # refused (an object array would carry arbitrary pickled objects).
    codes = '?bhilqBHILQefd'
    return sorted({type(np.dtype(code)) for code in codes}, key=lambda cls: cls.__name__)


# MMEngine pickles a HistoryBuffer with its statistics methods, as ``getattr(HistoryBuffer,
# 'mean')``; these are the only attribute look-ups a checkpoint may ask for.
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_method(owner: Any, name: Any) -> Any:
    """Stands in for ``builtins.getattr`` while unpickling: resolves exactly
    ``HistoryBuffer.min / max / current / mean`` and refuses every other look-up."""
    if owner is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'Weights only load failed. WeightsUnpickler error: the file asks for the attribute '
        f'{name!r} of {owner!r}; only the statistics methods of HistoryBuffer '
        f'({", ".join(_HISTORY_BUFFER_METHODS)}) are resolved')


def mmengine_safe_globals() -> List[Any]:
    """The globals that MMEngine checkpoints need beyond tensors and containers.

    Returns:
        list: entries for :func:`torch.serialization.safe_globals`: ``HistoryBuffer``,
        ``numpy.ndarray``, ``numpy.dtype``, the numeric dtype classes, numpy's array and scalar
        reconstructors (also under their numpy-1 module path, so that checkpoints written with
        numpy 1 load with numpy 2), and, under the name ``builtins.getattr``, a look-up that
        resolves only the statistics methods of ``HistoryBuffer`` (never ``getattr`` itself).
    """
    try:
        from numpy._core import multiarray  # numpy>=2
    except ImportError:  # pragma: no cover (numpy 1)
        from numpy.core import multiarray
    entries: List[Any] = [HistoryBuffer, np.ndarray, np.dtype, *_numeric_dtype_classes()]
    for function in (multiarray._reconstruct, multiarray.scalar):
        entries.append(function)
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            if function.__module__ != module:
                entries.append((function, f'{module}.{function.__name__}'))
    entries.append((_history_buffer_method, 'builtins.getattr'))
    return entries


def _refusal_reason(message: str) -> str:
    match = re.search(r'the file asks for (the attribute .+? of .+?);', message)
    if match:
        return f'a look-up of {match.group(1)}'
    match = re.search(r'GLOBAL (\S+) (?:was not an allowed global|whose module)', message)
    if match:
        name = match.group(1)  # torch drops the module of builtins ('eval')
        return f'a reference to the Python object {name if "." in name else "builtins." + name}'
    match = re.search(r'but got (<[^>]+>)', message)
    if match:
        return f'an object of type {match.group(1)}'
    match = re.search(r'WeightsUnpickler error: ([^\n]+)', message)
    return match.group(1).strip() if match else 'a pickled Python object it cannot rebuild'


def _damaged_error(message: str) -> Exception:
    # The resume machinery's error, so that every tool names damage the same way.
    from silc_seg.engine.checkpointing import CheckpointDamagedError
    return CheckpointDamagedError(message)


def checkpoint_file_damage(filename: str) -> Optional[str]:
    """Why ``filename`` cannot be a checkpoint ``torch.load`` reads, from its first bytes and
    (for a zip archive) its central directory; None when it may be one.

    Files that are not checkpoints at all (empty, random bytes, another format) are told apart
    from the files that ask for Python objects (:class:`CheckpointRefusedError`), because the
    remedies differ.
    """
    if not osp.isfile(filename):
        return None  # torch.load reports a missing file itself
    size = osp.getsize(filename)
    if size == 0:
        return 'empty (0 bytes): a save that never wrote anything, or not a checkpoint'
    with open(filename, 'rb') as file:
        head = file.read(8)
    if head[:4] == b'PK\x03\x04':  # torch.save's zip format (torch>=1.6), TorchScript archives
        from silc_seg.engine.checkpointing import checkpoint_damage
        return checkpoint_damage(filename)
    if head[:1] == b'\x80':  # a pickle (protocol >= 2): torch.save's legacy format
        return None
    return (f'not a PyTorch checkpoint ({size} bytes starting with {head!r}: neither a '
            'torch.save zip archive nor a pickle): damaged, or a file of another format '
            '(safetensors files need the .safetensors extension; big_vision .npz files: '
            'tools/model_converters/bigvision2silc.py)')


def torch_load_weights_only(filename: str, map_location: Any = 'cpu') -> Any:
    """``torch.load`` with ``weights_only=True`` that admits MMEngine's checkpoint types.

    Args:
        filename (str): A ``torch.save`` file.
        map_location: As for :func:`torch.load`. Defaults to ``'cpu'``.

    Returns:
        The unpickled object.

    Raises:
        CheckpointDamagedError: the file is empty, truncated or not a checkpoint at all
            (:func:`checkpoint_file_damage`).
        CheckpointRefusedError: the file asks for anything else; the message says what and why,
            and nothing from the file has run.
    """
    damage = checkpoint_file_damage(filename)
    if damage is not None:
        raise _damaged_error(f'{filename} is {damage}. Nothing was unpickled.')
    try:
        with torch.serialization.safe_globals(mmengine_safe_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except (EOFError, RuntimeError) as error:  # a damaged archive or a cut-off legacy pickle
        raise _damaged_error(f'{filename} is damaged (truncated or overwritten, not readable '
                             f'as a checkpoint): {error}') from None
    except pickle.UnpicklingError as error:
        message = str(error)
        if 'Weights only load failed' not in message and 'WeightsUnpickler' not in message:
            raise CheckpointRefusedError(
                f'{filename} is not a PyTorch checkpoint that can be read: {message}') from None
        raise CheckpointRefusedError(
            f'Refused to load {filename}: the file contains {_refusal_reason(message)}. '
            'silc-seg only unpickles tensors, plain containers and the types of MMEngine '
            'checkpoints (history buffers, numeric numpy arrays and scalars), because '
            'unpickling anything else can run code stored in the file. Nothing from the file '
            'was executed. Save only the weights (a state dict of tensors, or .safetensors), or '
            'convert public weights with tools/model_converters/.') from None


def load_from_local(filename: str, map_location: Any = None) -> dict:
    """MMEngine's loader of local files while silc-seg is imported.

    ``.safetensors`` files are read with safetensors (their string metadata becomes ``meta``);
    everything else with :func:`torch_load_weights_only`.

    Args:
        filename (str): Local path.
        map_location: As for :func:`torch.load`.

    Returns:
        dict: The checkpoint.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if filename.endswith('.safetensors'):
        from safetensors import safe_open
        from safetensors.torch import load_file
        device = map_location if isinstance(map_location, str) else 'cpu'
        with safe_open(filename, framework='pt') as handle:
            meta = dict(handle.metadata() or {})
        return {'state_dict': load_file(filename, device=device), 'meta': meta}
    return torch_load_weights_only(filename, map_location)


def register_checkpoint_loaders() -> None:
    """Make :func:`load_from_local` MMEngine's loader of local files (``load_from``,
    ``init_cfg=dict(type='Pretrained')``, ``--resume``); :mod:`silc_seg.hub` registers the
    weights names (``openai:``, ``open_clip:``, ``hf-hub:``) when the package is imported."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)


def fitting_config_hint(checkpoint: Mapping) -> str:
    """What a checkpoint says about the config it fits ('' when it says nothing).

    Converted checkpoints record the tower config (``meta['config']``); runner checkpoints the
    whole training config (``meta['cfg']``) and the run name (``meta['experiment_name']``).
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    if not isinstance(meta, Mapping):
        return ''
    if meta.get('config'):
        model = f' ({meta["model"]})' if meta.get('model') else ''
        return (f' The checkpoint was converted for the towers of {meta["config"]}{model}: use '
                'a config whose towers are those.')
    if meta.get('cfg'):
        name = meta.get('experiment_name', 'the run that saved it')
        return (f' The checkpoint carries the config it was trained with (run {name}; the full '
                "text is in checkpoint['meta']['cfg']): use that config.")
    return ''


def tower_layout(module: nn.Module) -> dict:
    """What a tower's weights do not show but its outputs depend on: the MLP activation
    (``act``, as configs name it), whether there is an ``ln_pre``, the pooling, the width and
    the LayerNorm epsilon; only the entries the tower has."""
    from silc_seg.models.layers.transformer import ACTIVATIONS
    layout = {}
    mlp_act = next((m.act for m in module.modules()
                    if hasattr(m, 'fc1') and isinstance(getattr(m, 'act', None), nn.Module)), None)
    for name, factory in ACTIVATIONS.items():
        made = factory()
        if (mlp_act is not None and type(made) is type(mlp_act)
                and getattr(made, 'approximate', None) == getattr(mlp_act, 'approximate', None)):
            layout['act'] = name
    if hasattr(module, 'ln_pre'):
        layout['ln_pre'] = isinstance(module.ln_pre, nn.LayerNorm)
    for key in ('pool_type', 'width', 'causal'):
        if hasattr(module, key):
            layout[key] = getattr(module, key)
    final = getattr(module, 'ln_post', None) or getattr(module, 'ln_final', None)
    if isinstance(final, nn.LayerNorm):
        layout['norm_eps'] = final.eps
    return layout


def check_recorded_layout(model: nn.Module,
                          checkpoint: Mapping,
                          filename: str,
                          prefix: Optional[str] = None) -> None:
    """Stop when a converted checkpoint meets towers built differently from the config it
    records (``meta['config']``, written by ``tools/model_converters``).

    Activation, ``ln_pre``, pooling and LayerNorm epsilon leave the weights' keys and shapes
    unchanged, so QuickGELU weights (OpenAI CLIP) load into GELU towers and give wrong numbers
    without a sign. The recorded config's towers are built on the ``meta`` device (no memory,
    no weights) and their :func:`tower_layout` compared with the model's.

    Raises:
        CheckpointMismatchError: naming each difference, the config the checkpoint fits and
            the ``--cfg-options`` that make the model match it.
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    recorded = meta.get('config') if isinstance(meta, Mapping) else None
    if not recorded:
        return
    from mmengine.config import Config

    from silc_seg.registry import MODELS
    from silc_seg.utils.config import get_config_path
    try:
        cfg = Config.fromfile(get_config_path(str(recorded)))
    except FileNotFoundError:
        warnings.warn(f'{filename} records the config {recorded}, which this silc-seg does '
                      'not have: the towers\' activation and layout are not checked')
        return
    differences, options = [], []
    for tower in ('image_encoder', 'text_encoder'):
        if prefix:
            module = model if prefix.rstrip('.') == tower else None
        else:
            module = getattr(model, tower, None)
        if not isinstance(module, nn.Module) or not isinstance(cfg.get(tower), dict):
            continue
        with torch.device('meta'):
            expected = tower_layout(MODELS.build(cfg.get(tower)))
        actual = tower_layout(module)
        for key, value in expected.items():
            if key in actual and actual[key] != value:
                differences.append(f'{tower}.{key}={actual[key]!r} in the model vs {value!r}')
                if key in cfg.get(tower):
                    options.append(f'model.{tower}.{key}={value}')
    if differences:
        model_name = f' ({meta["model"]})' if meta.get('model') else ''
        fix = (f'; or with --cfg-options {" ".join(options)}' if options else '')
        raise CheckpointMismatchError(
            f'{filename} was converted for the towers of {recorded}{model_name}, and the model '
            f'is built differently: {"; ".join(differences)} there. The weights would load '
            'and give wrong outputs. Use a config whose towers are those of '
            f'{recorded}{fix}.')


def check_checkpoint_fits(model_state: Mapping[str, torch.Tensor],
                          state_dict: Mapping[str, torch.Tensor],
                          filename: str = 'checkpoint',
                          allow_missing: bool = False,
                          hint: str = '',
                          max_listed: int = 5,
                          resizable: Sequence[str] = ()) -> List[str]:
    """Check that a checkpoint's weights fit a model: same shapes, no key missing.

    Keys of the checkpoint that the model does not have (a pretraining teacher, a distillation
    head) are allowed and returned. Keys the model needs but the checkpoint lacks raise (unless
    ``allow_missing``), and so does any tensor whose shape differs from the model's, because
    evaluating partly random weights gives meaningless numbers.

    Args:
        model_state (Mapping[str, Tensor]): ``model.state_dict()``.
        state_dict (Mapping[str, Tensor]): the checkpoint's weights (keys already revised).
        filename (str): checkpoint name used in the message.
        allow_missing (bool): return instead of raising on missing keys.
        hint (str): appended to the message (see :func:`fitting_config_hint`).
        max_listed (int): how many keys of each kind the message lists.
        resizable (Sequence[str]): keys whose number of positions (dim 1) the model adapts
            when loading (a ViT's ``pos_embed`` at another resolution); only the other dims
            must match.

    Returns:
        list[str]: the unexpected (unused) checkpoint keys.

    Raises:
        CheckpointMismatchError: on a shape mismatch or missing keys.
    """

    def fits(key, ckpt_shape, model_shape):
        if ckpt_shape == model_shape:
            return True
        return (key in resizable and len(ckpt_shape) == len(model_shape) == 3
                and ckpt_shape[::2] == model_shape[::2])

    missing = sorted(set(model_state) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(model_state))
    wrong_shape = [(key, tuple(state_dict[key].shape), tuple(value.shape))
                   for key, value in model_state.items()
                   if key in state_dict and hasattr(state_dict[key], 'shape')
                   and not fits(key, tuple(state_dict[key].shape), tuple(value.shape))]
    problems = []
    if wrong_shape:
        problems.append(f'{len(wrong_shape)} tensor(s) have another shape than in the model: ' +
                        list_keys([
                            f'{key} {ckpt} in the checkpoint vs {model} in the model'
                            for key, ckpt, model in wrong_shape
                        ], max_listed))
    if missing and not allow_missing:
        problems.append(f'{len(missing)} missing key(s): {list_keys(missing, max_listed)}')
    if problems:
        raise CheckpointMismatchError(
            f'{filename} does not fit the model: ' + '; '.join(problems) +
            (f'; {len(unexpected)} checkpoint key(s) are not used by the model: '
             f'{list_keys(unexpected, max_listed)}' if unexpected else '') +
            '. The config must describe the architecture the checkpoint was trained or '
            'converted for.' + hint)
    return unexpected


def revise_key(key: str) -> str:
    """A checkpoint key under the name MMEngine gives it when loading (:data:`REVISE_KEYS`)."""
    for pattern, replacement in REVISE_KEYS:
        key = re.sub(pattern, replacement, key)
    return key


def load_model_checkpoint(model: nn.Module,
                          filename: str,
                          allow_missing: bool = False,
                          logger: Optional[str] = 'current',
                          prefix: Optional[str] = None) -> dict:
    """Load the weights of ``filename`` into ``model``, failing clearly when they do not fit.

    Args:
        model (nn.Module): Target model (unwrapped).
        filename (str): ``.pth`` (runner checkpoint or state dict, weights-only) or
            ``.safetensors``; any path or URL MMEngine's ``CheckpointLoader`` reads.
        allow_missing (bool): load even if the checkpoint lacks some model keys (they keep
            their initialization). Shape mismatches are always errors.
        logger (str, optional): MMEngine logger of the loading messages.
        prefix (str, optional): load only the checkpoint keys under this prefix, without it
            (``'image_encoder.'`` for a tower), as ``init_cfg=dict(type='Pretrained',
            prefix=...)`` does.

    Returns:
        dict: The loaded checkpoint. Its ``meta['dataset_meta']``, if it names classes, is set
        on a whole model (no ``prefix``).

    Raises:
        CheckpointRefusedError: the file holds objects that weights-only loading refuses.
        CheckpointMismatchError: missing keys, tensors of the wrong shape, or weights meant for
            the model's modules (all weights under ``prefix``) that they do not use.
    """
    checkpoint = _load_checkpoint(filename, map_location='cpu', logger=logger)
    if not isinstance(checkpoint, dict):
        raise TypeError(f'{filename} holds a {type(checkpoint).__name__}, not a state dict')
    state_dict = {
        revise_key(key): value
        for key, value in checkpoint.get('state_dict', checkpoint).items()
    }
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        state_dict = {
            key[len(prefix):]: value
            for key, value in state_dict.items() if key.startswith(prefix)
        }
        if not state_dict:
            raise CheckpointMismatchError(f'{filename} has no weights under {prefix!r}.' +
                                          fitting_config_hint(checkpoint))
    # Towers that resize some weights on load (a ViT's position embeddings at another
    # resolution) name them in ``checkpoint_resizable_keys``.
    resizable = [
        f'{name}.{key}' if name else key for name, module in model.named_modules()
        for key in getattr(module, 'checkpoint_resizable_keys', ())
    ]
    unexpected = set(
        check_checkpoint_fits(
            model.state_dict(),
            state_dict,
            str(filename),
            allow_missing,
            fitting_config_hint(checkpoint),
            resizable=resizable))
    # Weights meant for a module the model has (all of them, for a tower loaded by prefix)
    # that it does not use are a layout the model lacks (ln_pre, an attention pool): an error.
    # Weights of modules the model does not have (a pretraining teacher) are skipped.
    children = {name for name, _ in model.named_children()}
    unused = sorted(key for key in unexpected if prefix or key.split('.', 1)[0] in children)
    if unused:
        where = f'the weights under {prefix!r}' if prefix else 'weights of its modules'
        layers = sorted({key.rsplit('.', 1)[0] for key in unused})
        raise CheckpointMismatchError(
            f'{filename} holds {where} that the model does not use: {len(unused)} weight(s) '
            f'({list_keys(unused, 5)}). The model lacks the layer(s) {list_keys(layers, 5)} the '
            'checkpoint has (e.g. ln_pre=True in the image tower\'s config), so it is built '
            'differently from the towers the checkpoint was made for.' +
            fitting_config_hint(checkpoint))
    check_recorded_layout(model, checkpoint, str(filename), prefix)
    if unexpected:
        # Grouped by top-level module: a pretraining teacher is one entry, not hundreds.
        groups = Counter(key.split('.', 1)[0] for key in unexpected)
        warnings.warn(f'{filename}: skipped {len(unexpected)} weight(s) the model does not use: ' +
                      ', '.join(f'{name}.* ({count})' for name, count in sorted(groups.items())))
    # Keys are revised already (REVISE_KEYS, as MMEngine's loader would).
    used = OrderedDict((key, value) for key, value in state_dict.items() if key not in unexpected)
    _load_checkpoint_to_model(
        model, {'state_dict': used}, strict=not allow_missing, logger=logger, revise_keys=[])
    meta = checkpoint.get('meta')
    dataset_meta = meta.get('dataset_meta') if isinstance(meta, dict) else None
    # Only class names are of use to a model; a pretraining run records its image-text
    # dataset's metainfo, which has none (and a segmentor would refuse it).
    if prefix is None and isinstance(dataset_meta, dict) and dataset_meta.get('classes'):
        model.dataset_meta = dataset_meta
    return checkpoint


def init_weights_checked(module: nn.Module, init_weights: Callable[[], None]) -> bool:
    """Run a tower's ``init_weights`` with its ``Pretrained`` ``init_cfg`` loaded by
    :func:`load_model_checkpoint` instead of MMEngine's ``PretrainedInit``, which loads with
    ``strict=False`` and only logs tensors of another shape.

    Args:
        module (nn.Module): a ``BaseModule`` whose ``init_cfg`` may hold
            ``dict(type='Pretrained', checkpoint=..., prefix=...)``.
        init_weights (Callable): the parent class's ``init_weights`` bound to ``module``; it
            runs with the other ``init_cfg`` entries.

    Returns:
        bool: whether pretrained weights were loaded.
    """
    init_cfgs = module.init_cfg if isinstance(module.init_cfg, list) else [module.init_cfg]
    pretrained = [cfg for cfg in init_cfgs if cfg and cfg.get('type') == 'Pretrained']
    if not pretrained:
        init_weights()
        return False
    original = module.init_cfg
    module.init_cfg = [cfg for cfg in init_cfgs if cfg and cfg.get('type') != 'Pretrained']
    try:
        init_weights()
    finally:
        module.init_cfg = original
    for cfg in pretrained:
        load_model_checkpoint(module, cfg['checkpoint'], prefix=cfg.get('prefix'))
    return True


__all__: Tuple[str,
               ...] = ('REVISE_KEYS', 'CheckpointMismatchError', 'CheckpointRefusedError',
                       'check_checkpoint_fits', 'check_recorded_layout', 'checkpoint_file_damage',
                       'tower_layout', 'fitting_config_hint', 'init_weights_checked', 'list_keys',
                       'load_from_local', 'load_model_checkpoint', 'mmengine_safe_globals',
                       'register_checkpoint_loaders', 'revise_key', 'torch_load_weights_only')
