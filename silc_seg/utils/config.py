import os.path as osp
from typing import Optional

import torch
import torch.distributed as dist
from mmengine.config import Config


def prepare_runner_cfg(cfg: Config,
                       config_path: str,
                       work_dir: Optional[str] = None,
                       cfg_options: Optional[dict] = None,
                       launcher: str = 'none') -> Config:
    """Apply the command-line settings shared by ``tools/train.py`` and ``tools/test.py``.

    - ``--cfg-options`` are merged, ``--launcher`` is recorded;
    - the work dir is CLI > config > ``./work_dirs/<config name>`` (as in mmseg);
    - ``default_scope`` falls back to ``'mmseg'``, the scope silc-seg registers into;
    - :class:`~silc_seg.engine.hooks.SafeCheckpointHook` is added unless listed, so that the
      checkpoints the run saves can be resumed with ``torch.load(weights_only=True)``.

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
    custom_hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(h.get('type') in ('SafeCheckpointHook', 'mmseg.SafeCheckpointHook')
               for h in custom_hooks):
        custom_hooks.append(dict(type='SafeCheckpointHook'))
    cfg.custom_hooks = custom_hooks
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
