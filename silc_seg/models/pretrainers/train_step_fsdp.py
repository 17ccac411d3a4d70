import inspect

import torch
import torch.distributed as dist
from mmengine.model import MMFullyShardedDataParallel

from silc_seg.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class TrainStepFSDP(MMFullyShardedDataParallel):
    """:class:`MMFullyShardedDataParallel` that runs the module's own ``train_step``, the FSDP
    counterpart of :class:`TrainStepDDP`.

    ``module.train_step(data, optim_wrapper, ddp=self)`` sends the forward through this
    wrapper (FSDP gathers each unit's parameters there) and, after the optimizer step, updates
    the EMA teacher on local shards (:func:`~silc_seg.models.utils.fsdp.fsdp_ema_update`).
    Global-norm gradient clipping (``optim_wrapper.clip_grad=dict(max_norm=...)``) is routed to
    ``FSDP.clip_grad_norm_``, which reduces the norm over all shards (torch's
    ``clip_grad_norm_`` would clip each rank by the norm of its own shard only). Set it with
    ``strategy=dict(type='FSDPStrategy', model_wrapper=dict(type='mmseg.TrainStepFSDP'))``;
    ``use_orig_params`` must stay True (MMEngine's default).

    FSDP cannot flatten 0-d parameters (the contrastive loss's ``logit_scale`` and
    ``logit_bias``): they are left out of the sharding (``ignored_states``), kept whole on every
    rank, and their gradients are averaged over the ranks as DDP would (a hook after each
    accumulation), so checkpoints keep their shapes.

    Args:
        module (nn.Module): The model.
        **kwargs: :class:`MMFullyShardedDataParallel`'s arguments.
    """

    def __init__(self, module, **kwargs) -> None:
        if not kwargs.get('use_orig_params', True):
            raise ValueError('TrainStepFSDP needs use_orig_params=True: the EMA teacher, the '
                             "optimizer's parameter groups and the hooks use parameter names")
        module_steps = 'ddp' in inspect.signature(module.train_step).parameters
        scalars = [param for param in module.parameters() if param.dim() == 0]
        if scalars:
            device = kwargs.get('device_id')
            device = torch.device('cuda', device) if isinstance(device, int) else device
            for param in scalars:
                if device is not None:
                    param.data = param.data.to(device)
                if param.requires_grad:
                    param.register_post_accumulate_grad_hook(_average_grad)
            kwargs['ignored_states'] = list(kwargs.get('ignored_states') or []) + scalars
        super().__init__(module=module, **kwargs)
        self._module_steps = module_steps

    def _clip_grad_norm(self, params, max_norm: float, norm_type: float = 2.0, **kwargs):
        return self.clip_grad_norm_(max_norm, norm_type)

    def train_step(self, data, optim_wrapper):
        if getattr(optim_wrapper, 'clip_func', None) is torch.nn.utils.clip_grad_norm_:
            optim_wrapper.clip_func = self._clip_grad_norm
        if not self._module_steps:
            return super().train_step(data, optim_wrapper)
        return self.module.train_step(data, optim_wrapper, ddp=self)


def _average_grad(param: torch.Tensor) -> None:
    """Average a replicated (not sharded) parameter's gradient over the ranks."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(param.grad)
        param.grad.div_(dist.get_world_size())
