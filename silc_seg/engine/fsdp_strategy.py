"""MMEngine's FSDPStrategy with a working ``--resume``, crash-safe saves and shard files that
load weights-only."""
import dataclasses
import os.path as osp
import time
from typing import Callable, Optional

import mmengine
import torch
from mmengine._strategy import FSDPStrategy
from mmengine.dist import barrier, get_rank, is_main_process
from mmengine.registry import STRATEGIES
from mmengine.utils import get_git_hash
from torch.distributed._shard.sharded_tensor import Shard, ShardedTensor, init_from_local_shards
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

from silc_seg.engine.checkpointing import save_checkpoint_file


@STRATEGIES.register_module()
class SILCFSDPStrategy(FSDPStrategy):
    """:class:`~mmengine._strategy.FSDPStrategy` that resumes, saves atomically, and writes shard
    files of plain tensors.

    - :meth:`load_optim_state_dict` calls ``FSDP.optim_state_dict_to_load`` with keywords:
      MMEngine 0.10.7 passes ``(state_dict, model, optim)`` positionally, the argument order of
      torch < 2.2, so every ``--resume`` of an FSDP run failed (``TypeError: unhashable type:
      'dict'``); MMEngine's main branch has the same fix after 0.10.7.
    - On a CPU run, the full optimizer state is gathered without ``offload_to_cpu``: torch
      (2.14, ``_allgather_orig_param_states``) all-gathers every state of a flat parameter
      (``exp_avg``, then ``exp_avg_sq``) into one reused buffer and, with ``offload_to_cpu``,
      keeps views of it (``.cpu()`` copies only off the CPU), so every saved ``exp_avg`` was
      overwritten by ``exp_avg_sq`` and a resumed run diverged from its first step. Without
      it, torch clones each state. GPU runs are unchanged (the offload copies).
    - Checkpoints are written by :func:`~silc_seg.engine.checkpointing.save_checkpoint_file`,
      the writer of :class:`~silc_seg.engine.hooks.SafeCheckpointHook` (temporary file in the
      same folder, fsync, rename), so a save killed mid-write leaves the previous checkpoint
      as it was. With ``state_dict_cfg='local'`` every rank writes its ``rankN.pth`` and the
      ranks wait for each other before the save returns: ``last_checkpoint`` (written by rank 0
      after the save) never names a folder with a shard still being written.
    - ``state_dict_cfg='local'``: each shard file holds the rank's own flat-parameter shards as
      plain tensors (FSDP hands them out as ``ShardedTensor`` objects, which weights-only
      loading refuses) and the rank's own optimizer state (``optimizer.state_dict()``, plain
      tensors too), so it loads with ``weights_only=True``; on load the shards are put back
      into the ``ShardedTensor`` layout of this run's model. Resuming needs the same number of
      ranks and the same wrapping (checked). ``'full'`` checkpoints are as MMEngine writes them.

    Same arguments as ``FSDPStrategy``; use it with ``strategy=dict(type='SILCFSDPStrategy',
    ...)``.
    """

    def _wrap_model(self, model):
        model = super()._wrap_model(model)
        config = self.optim_state_dict_config
        if (isinstance(model, FSDP) and model.compute_device.type == 'cpu'
                and getattr(config, 'offload_to_cpu', False)):
            self.optim_state_dict_config = dataclasses.replace(config, offload_to_cpu=False)
            FSDP.set_state_dict_type(model, self.state_dict_type, self.state_dict_config,
                                     self.optim_state_dict_config)
        return model

    def save_checkpoint(self,
                        filename: str,
                        *,
                        save_optimizer: bool = True,
                        save_param_scheduler: bool = True,
                        extra_ckpt: Optional[dict] = None,
                        callback: Optional[Callable] = None) -> None:
        """Save the checkpoint: ``filename`` on rank 0 (``'full'``), or ``filename/rankN.pth``
        on every rank (``'local'``). Call it on every rank (the state dicts are collectives).

        Args:
            filename (str): The checkpoint path (a folder for ``'local'``).
            save_optimizer (bool): Save the optimizer state. Defaults to True.
            save_param_scheduler (bool): Save the schedulers' states. Defaults to True.
            extra_ckpt (dict, optional): More entries (``meta``, ``message_hub``).
            callback (callable, optional): Called with the checkpoint before it is written
                (the runner's ``before_save_checkpoint`` hooks).
        """
        checkpoint = dict(state_dict=self.model_state_dict())
        if save_optimizer and hasattr(self, 'optim_wrapper'):
            checkpoint['optimizer'] = self.optim_state_dict()
        if save_param_scheduler and hasattr(self, 'param_schedulers'):
            checkpoint['param_schedulers'] = self.scheduler_state_dict()
        extra = dict(extra_ckpt or {})
        extra['meta'] = dict(
            extra.get('meta') or {},
            seed=self.seed,
            time=time.strftime('%Y%m%d_%H%M%S', time.localtime()),
            mmengine=mmengine.__version__ + get_git_hash())
        checkpoint.update(extra)
        if callback is not None:
            callback(checkpoint)
        if self._is_full_state_dict():
            if is_main_process():
                save_checkpoint_file(checkpoint, filename)
            return
        save_checkpoint_file(checkpoint, osp.join(filename, f'rank{get_rank()}.pth'))
        barrier()  # every shard is complete before rank 0 moves last_checkpoint

    def model_state_dict(self) -> dict:
        """The model's state dict; with ``'local'``, its ``ShardedTensor`` values replaced by
        this rank's shard (a plain tensor, empty where the rank holds none)."""
        state_dict = self.model.state_dict()
        if self._is_full_state_dict():
            return state_dict
        return {key: _local_shard(value) for key, value in state_dict.items()}

    def optim_state_dict(self) -> dict:
        """The full optimizer state (``FSDP.optim_state_dict``), or with ``'local'`` this rank's
        own ``optimizer.state_dict()`` (plain tensors of its parameter shards)."""
        if self._is_full_state_dict():
            return super().optim_state_dict()
        return self.optim_wrapper.state_dict()

    def load_checkpoint(self, filename: str, **kwargs) -> dict:
        if not self._is_full_state_dict() and not osp.isdir(filename) and '://' not in filename:
            raise FileNotFoundError(
                f"state_dict_cfg='local' resumes from a folder of shard files (rank0.pth, ...), "
                f'but {filename} is not a folder: resume a full checkpoint with '
                "state_dict_cfg='full'")
        return super().load_checkpoint(filename, **kwargs)

    def load_model_state_dict(self, state_dict: dict, **kwargs) -> None:
        if not self._is_full_state_dict():
            state_dict = self._to_sharded_tensors(state_dict)
        super().load_model_state_dict(state_dict, **kwargs)

    def load_optim_state_dict(self, state_dict: dict) -> None:
        if not self._is_full_state_dict():
            _check_local_optim_state(state_dict, self.optim_wrapper.optimizer)
            self.optim_wrapper.load_state_dict(state_dict)
            return
        optim_state_dict = FSDP.optim_state_dict_to_load(
            model=self.model, optim=self.optim_wrapper.optimizer, optim_state_dict=state_dict)
        self.optim_wrapper.load_state_dict(optim_state_dict)

    def _to_sharded_tensors(self, state_dict: dict) -> dict:
        """Put the plain shards of a ``'local'`` shard file back into the ``ShardedTensor``
        layout of this model's own local state dict (same keys, same shard shapes)."""
        template = self.model.state_dict()
        out = dict(state_dict)
        for key, current in template.items():
            if not isinstance(current, ShardedTensor) or key not in state_dict:
                continue
            loaded = state_dict[key]
            if isinstance(loaded, ShardedTensor):
                continue
            shards = current.local_shards()
            expected = shards[0].tensor.shape if shards else torch.Size([0])
            if loaded.shape != expected:
                raise RuntimeError(
                    f'Shard {key} of rank {get_rank()} has shape {tuple(loaded.shape)} in the '
                    f'checkpoint but {tuple(expected)} in this run: resume a sharded '
                    "checkpoint with the world size and wrapping it was saved with (or save "
                    "state_dict_cfg='full' checkpoints)")
            local = [Shard(loaded.to(shards[0].tensor), shards[0].metadata)] if shards else []
            out[key] = init_from_local_shards(
                local, *current.size(), process_group=current._process_group)
        return out


def _local_shard(value):
    """A ``ShardedTensor``'s one local shard, copied to the CPU (an empty tensor if none)."""
    if not isinstance(value, ShardedTensor):
        return value
    shards = value.local_shards()
    if len(shards) > 1:
        raise RuntimeError(f'expected at most one local shard per FSDP flat parameter, got '
                           f'{len(shards)}')
    if not shards:
        return torch.empty(0, dtype=value.dtype)
    return shards[0].tensor.detach().to('cpu', copy=True)


def _check_local_optim_state(state_dict: dict, optimizer: torch.optim.Optimizer) -> None:
    """A ``'local'`` optimizer state fits this rank's parameter shards (same groups, same
    shapes), so that it was saved by the same world size and wrapping."""
    params = [param for group in optimizer.param_groups for param in group['params']]
    groups = state_dict.get('param_groups', [])
    sizes = [len(group['params']) for group in groups]
    if sizes != [len(group['params']) for group in optimizer.param_groups]:
        raise RuntimeError(
            f'The optimizer state of rank {get_rank()} has parameter groups of sizes {sizes}, '
            'this run '
            f'{[len(group["params"]) for group in optimizer.param_groups]}')
    index = {pid: i for i, pid in enumerate(pid for group in groups for pid in group['params'])}
    for pid, state in state_dict.get('state', {}).items():
        param = params[index[pid]]
        for name, value in state.items():
            if torch.is_tensor(value) and value.dim() and value.shape != param.shape:
                raise RuntimeError(
                    f'The optimizer state {name!r} of parameter {index[pid]} of rank '
                    f'{get_rank()} has shape {tuple(value.shape)}, its shard in this run '
                    f'{tuple(param.shape)}: resume a sharded checkpoint with the world size '
                    'and wrapping it was saved with')
