import os.path as osp
from typing import Optional

import torch
import torch.distributed as dist
from mmengine.config import Config

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


def prepare_runner_cfg(cfg: Config,
                       config_path: str,
                       work_dir: Optional[str] = None,
                       cfg_options: Optional[dict] = None,
                       launcher: str = 'none') -> Config:
    """Apply the command-line settings shared by ``tools/train.py`` and ``tools/test.py``.

    - ``--cfg-options`` are merged, ``--launcher`` is recorded;
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
    """
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config_path))[0])
    cfg.setdefault('default_scope', 'mmseg')
    return cfg


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
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    return True
