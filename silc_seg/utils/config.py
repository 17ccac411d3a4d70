import difflib
import inspect
import logging
import os.path as osp
from typing import Any, List, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log
from torch.utils.data import DataLoader

_PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def configs_root() -> str:
    """The folder of silc-seg's configs, wherever the package is.

    An installed package ships them in ``silc_seg/.mim/configs`` (as mmseg does; ``setup.py``
    copies them there, or links them for an editable install), which is also where MMEngine
    looks for ``silc_seg::`` config paths. A source checkout (next to ``setup.py``) uses its own
    ``configs/`` folder, so that edits there count even if a build left a copy in ``.mim``.

    Returns:
        str: absolute path of the configs folder.
    """
    checkout = osp.dirname(_PACKAGE_DIR)
    if osp.isfile(osp.join(checkout, 'setup.py')) and osp.isdir(
            osp.join(checkout, 'configs', 'silc')):
        return osp.join(checkout, 'configs')
    shipped = osp.join(_PACKAGE_DIR, '.mim', 'configs')
    if osp.isdir(osp.join(shipped, 'silc')):
        return shipped
    raise FileNotFoundError(
        f'silc-seg configs not found in {osp.join(_PACKAGE_DIR, ".mim", "configs")}: reinstall '
        'the package (pip install silc-seg, or pip install -e . in a checkout)')


def get_config_path(relative_path: str) -> str:
    """Absolute path of one of silc-seg's configs.

    Args:
        relative_path (str): path under the configs folder (``'silc/zs_ade150.py'``); a leading
            ``configs/`` is accepted.

    Returns:
        str: the path (the file must exist).
    """
    relative_path = relative_path.replace('\\', '/')
    if relative_path.startswith('configs/'):
        relative_path = relative_path[len('configs/'):]
    path = osp.join(configs_root(), relative_path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'no silc-seg config {relative_path!r} in {configs_root()}')
    return path


# Top-level settings MMEngine's Runner (and our tools) read with defaults, so configs often leave
# them out; overriding them needs no "+".
RUNNER_SETTINGS = frozenset([
    'auto_scale_lr', 'compile', 'custom_hooks', 'custom_imports', 'data_preprocessor',
    'default_hooks', 'default_scope', 'env_cfg', 'experiment_name', 'find_unused_parameters',
    'launcher', 'load_from', 'log_level', 'log_processor', 'model_wrapper_cfg', 'optim_wrapper',
    'param_scheduler', 'randomness', 'resume', 'runner_type', 'test_cfg', 'test_dataloader',
    'test_evaluator', 'train_cfg', 'train_dataloader', 'tta_model', 'tta_pipeline', 'val_cfg',
    'val_dataloader', 'val_evaluator', 'visualizer', 'work_dir'
])

# Untyped dicts whose consumer takes more keys than configs usually spell out.
_UNTYPED_DICT_KEYS = {
    # Runner.set_randomness
    'randomness': ('seed', 'diff_rank_seed', 'deterministic'),
    # Runner.setup_env
    'env_cfg': (
        'cudnn_benchmark',
        'mp_cfg',
        'dist_cfg',
        'resource_limit',
        # silc_seg.utils.threads.configure_threads (our tools)
        'num_threads'),
}


def _constructor_keywords(type_name: Any) -> tuple:
    """Keyword arguments the registered class ``type_name`` (any mmseg-scope registry) takes:
    its ``__init__`` parameters and, when that passes ``**kwargs`` on, its bases' too."""
    import mmseg.registry as registries
    cls = type_name if isinstance(type_name, type) else None
    if cls is None and isinstance(type_name, str):
        for name in ('MODELS', 'DATASETS', 'TRANSFORMS', 'HOOKS', 'LOOPS', 'OPTIM_WRAPPERS',
                     'OPTIMIZERS', 'PARAM_SCHEDULERS', 'METRICS', 'DATA_SAMPLERS', 'VISUALIZERS',
                     'VISBACKENDS', 'LOG_PROCESSORS', 'MODEL_WRAPPERS'):
            try:
                cls = getattr(registries, name).get(type_name)
            except Exception:  # unknown scope prefix or a failed lazy import
                cls = None
            if isinstance(cls, type):
                break
    if not isinstance(cls, type):
        return ()
    keywords = []
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            break
        keywords += [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return tuple(k for k in keywords if k != 'self')


def _accepted_new_keys(node: dict, path: list) -> tuple:
    """Keys a dict may gain without "+": its module's constructor keywords (dicts with a
    ``type``), a dataloader's ``DataLoader`` arguments, or the known keys of an untyped dict."""
    if 'type' in node:
        return _constructor_keywords(node['type'])
    if path and path[-1].endswith('dataloader'):
        return tuple(inspect.signature(DataLoader.__init__).parameters)
    return _UNTYPED_DICT_KEYS.get('.'.join(path), ())


class ConfigOverrideError(KeyError):
    """A ``--cfg-options`` key that names nothing in the config."""

    def __str__(self) -> str:
        return self.args[0]


def check_override_key(cfg: Config, key: str) -> None:
    """Check that the dotted ``key`` of an override names an existing config entry.

    Each component must exist in its parent dict (or be an index into its parent list). A
    component may also be new when its parent is an empty dict (nothing to misspell), when the
    parent has a ``type`` whose class takes it as a keyword argument (e.g.
    ``model.image_encoder.drop_path_rate``), when the parent is a dataloader dict
    and it is a ``DataLoader`` argument, for the known keys of ``randomness`` and ``env_cfg``,
    and, at the top level, for the settings the runner reads with a default
    (:data:`RUNNER_SETTINGS`).

    Raises:
        ConfigOverrideError: with the closest existing key ("did you mean").
    """
    node: Any = cfg.to_dict() if isinstance(cfg, Config) else cfg
    path = []
    for part in key.split('.'):
        where = '.'.join(path) or 'the config'
        if node is None:
            return  # MMEngine's merge reports a dict merged into None itself
        if isinstance(node, (list, tuple)):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigOverrideError(
                    f'`{key}`: {where} has {len(node)} items, so `{part}` is no index of it '
                    f'(0 to {len(node) - 1})')
            node = node[int(part)]
        elif isinstance(node, dict):
            if part in node:
                node = node[part]
            elif (not node or (not path and part in RUNNER_SETTINGS)
                  or part in _accepted_new_keys(node, path)):
                return
            else:
                candidates = [str(k) for k in node.keys()]
                if not path:
                    candidates += sorted(RUNNER_SETTINGS)
                close = difflib.get_close_matches(part, candidates, n=1, cutoff=0.5)
                wrong = '.'.join(path + [part])
                hint = (f'did you mean `{".".join(path + close)}`?'
                        if close else f'the keys of {where} are {", ".join(candidates[:20])}')
                raise ConfigOverrideError(
                    f'`{key}`: the config has no `{wrong}` ({hint}). To add a key the config '
                    f'does not have, write it with a leading "+": +{key}=...')
        else:
            return  # a scalar replaced by a dict: MMEngine's merge reports that itself
        path.append(part)


def merge_cfg_options(cfg: Config, options: Optional[dict]) -> Config:
    """Merge ``--cfg-options`` into ``cfg`` after checking every key (typos are errors).

    ``key=value`` must name an existing entry (see :func:`check_override_key`); ``+key=value``
    adds a key the config does not have (e.g. an extra keyword of a module), as in Hydra. Nothing
    is merged if any key fails.

    Args:
        cfg (Config): The loaded config, modified in place.
        options (dict, optional): Parsed ``--cfg-options`` (``DictAction``).

    Returns:
        Config: ``cfg``.

    Raises:
        ConfigOverrideError: A key names nothing in the config.
    """
    if not options:
        return cfg
    checked = {}
    for key, value in options.items():
        if key.startswith('+'):
            key = key[1:]
        else:
            check_override_key(cfg, key)
        checked[key] = value
    cfg.merge_from_dict(checked)
    return cfg


def _override_keys(options: Optional[dict]) -> set:
    """The dotted keys ``--cfg-options`` sets (a dict value sets every key under it)."""
    keys = set()

    def add(prefix, value):
        keys.add(prefix)
        if isinstance(value, dict):
            for key, item in value.items():
                add(f'{prefix}.{key}', item)

    for key, value in (options or {}).items():
        add(key.lstrip('+'), value)
    return keys


def follow_run_length(cfg: Config,
                      old_max_iters: Optional[int],
                      options: Optional[dict] = None) -> List[str]:
    """Make what a config ties to the run length follow a new ``train_cfg.max_iters``.

    Schedules and intervals are written as numbers in a config (``end=max_iters``), so
    ``--cfg-options train_cfg.max_iters=N`` alone would leave a cosine schedule ending at the old
    length and never save a checkpoint. Iteration-based values that equal the old ``max_iters``
    become ``N``: ``param_scheduler`` ``end``, a ``T_max`` that spanned its
    scheduler's ``begin`` to ``end``, ``train_cfg.val_interval`` and the checkpoint hook's
    ``interval``. Keys the same ``--cfg-options`` set are left as given; a scheduler that
    would begin at or after ``N`` (a warm-up as long as the run) is named in a warning.

    Args:
        cfg (Config): The merged config, modified in place.
        old_max_iters (int, optional): ``train_cfg.max_iters`` before the overrides.
        options (dict, optional): ``--cfg-options`` (their keys are not changed).

    Returns:
        list[str]: one line per changed key (``key: old -> new``), also logged.
    """
    train_cfg = cfg.get('train_cfg', None) or {}
    new = train_cfg.get('max_iters', None)
    if not isinstance(old_max_iters, int) or not isinstance(new, int) or new == old_max_iters:
        return []
    given = _override_keys(options)
    changed, late = [], []

    def follow(node: dict, key: str, path: str, value: int) -> None:
        if path in given or node.get(key) == value:
            return
        changed.append(f'{path}: {node[key]} -> {value}')
        node[key] = value

    if train_cfg.get('val_interval') == old_max_iters:
        follow(train_cfg, 'val_interval', 'train_cfg.val_interval', new)
    checkpoint = (cfg.get('default_hooks', None) or {}).get('checkpoint', None)
    if (isinstance(checkpoint, dict) and not checkpoint.get('by_epoch', True)
            and checkpoint.get('interval') == old_max_iters):
        follow(checkpoint, 'interval', 'default_hooks.checkpoint.interval', new)
    schedulers = cfg.get('param_scheduler', None)
    single = isinstance(schedulers, dict)
    for index, scheduler in enumerate([schedulers] if single else (schedulers or [])):
        if not isinstance(scheduler, dict) or scheduler.get('by_epoch', True):
            continue
        path = 'param_scheduler' if single else f'param_scheduler.{index}'
        begin, end = scheduler.get('begin', 0), scheduler.get('end', None)
        if begin >= new:  # never reached (a smoke test shorter than the warm-up): left as is
            late.append(f'{path} ({scheduler.get("type")}, begin={begin})')
            continue
        spanned = end is not None and scheduler.get('T_max') == end - begin
        if end == old_max_iters:
            follow(scheduler, 'end', f'{path}.end', new)
        if spanned:
            follow(scheduler, 'T_max', f'{path}.T_max', scheduler['end'] - begin)
    for line in changed:
        print_log(f'train_cfg.max_iters {old_max_iters} -> {new}: {line}', logger='current')
    if late:  # a smoke test shorter than the warm-up is fine; a real run wants to know
        print_log(
            f'train_cfg.max_iters={new} ends before {", ".join(late)} begins (set its '
            'begin / end, and the phases before it, with --cfg-options)',
            logger='current',
            level=logging.WARNING)
    return changed


def prepare_runner_cfg(cfg: Config,
                       config_path: str,
                       work_dir: Optional[str] = None,
                       cfg_options: Optional[dict] = None,
                       launcher: str = 'none') -> Config:
    """Apply the command-line settings shared by ``tools/train.py`` and ``tools/test.py``.

    - ``--cfg-options`` are checked and merged (:func:`merge_cfg_options`), ``--launcher`` is
      recorded;
    - schedules and intervals tied to the run length follow an overridden
      ``train_cfg.max_iters`` (:func:`follow_run_length`);
    - the work dir is CLI > config > ``./work_dirs/<config name>`` (as in mmseg);
    - ``default_scope`` falls back to ``'mmseg'``, the scope silc-seg registers into.

    Args:
        cfg (Config): The loaded config, modified in place.
        config_path (str): Path the config was loaded from (names the default work dir).
        work_dir (str, optional): ``--work-dir``.
        cfg_options (dict, optional): ``--cfg-options``.
        launcher (str): ``--launcher``.

    Returns:
        Config: ``cfg``.

    Raises:
        ConfigOverrideError: An override key names nothing in the config.
    """
    cfg.launcher = launcher
    old_max_iters = (cfg.get('train_cfg', None) or {}).get('max_iters', None)
    merge_cfg_options(cfg, cfg_options)
    follow_run_length(cfg, old_max_iters, cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])
    cfg.setdefault('default_scope', 'mmseg')
    return cfg


# Each fp32 optimizer wrapper and its mixed-precision counterpart.
AMP_WRAPPERS = {
    'OptimWrapper': 'AmpOptimWrapper',
    'NonFiniteGuardOptimWrapper': 'NonFiniteGuardAmpOptimWrapper',
}


def fp32_without_gpu(cfg: Config) -> bool:
    """On a machine without a GPU, switch a mixed-precision optimizer wrapper to fp32.

    MMEngine's ``AmpOptimWrapper`` stops with "only available training on gpu"; the GPU
    pretraining configs (``pretrain_b16.py``: bf16 autocast) then run on CPU in fp32, which
    needs no loss scaling. Logs one warning when it switches.

    Args:
        cfg (Config): The config, modified in place.

    Returns:
        bool: Whether the wrapper was switched.
    """
    wrapper = cfg.get('optim_wrapper', None)
    fp32_types = {amp: fp32 for fp32, amp in AMP_WRAPPERS.items()}
    if torch.cuda.is_available() or not wrapper or wrapper.get('type') not in fp32_types:
        return False
    amp_type = wrapper['type']
    wrapper['type'] = fp32_types[amp_type]
    dropped = [key for key in ('dtype', 'loss_scale') if wrapper.pop(key, None) is not None]
    print_log(
        f'No GPU: training in fp32 ({amp_type} -> {wrapper["type"]}'
        f'{", ignoring " + " and ".join(dropped) if dropped else ""})',
        logger='current',
        level=logging.WARNING)
    return True


def setup_cpu_distributed(cfg: Config, launcher: str) -> bool:
    """Make ``--launcher pytorch`` work on machines without a GPU (CPU / gloo).

    MMEngine's pytorch launcher calls ``torch.cuda.set_device(LOCAL_RANK)`` and wraps the model
    with ``device_ids=[LOCAL_RANK]``; neither works without CUDA. On such machines this joins the
    process group with the gloo backend itself (the runner then skips its own initialization) and
    wraps the model with ``device_ids=None``, as DDP requires for CPU modules. On GPU machines it
    does nothing.

    Args:
        cfg (Config): The config, modified in place.
        launcher (str): ``--launcher``.

    Returns:
        bool: Whether the CPU setup was applied.
    """
    if launcher != 'pytorch' or torch.cuda.is_available():
        return False
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    wrapper = dict(cfg.get('model_wrapper_cfg', None) or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    return True
