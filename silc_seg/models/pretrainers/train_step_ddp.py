import inspect

from mmengine.model import MMDistributedDataParallel

from silc_seg.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class TrainStepDDP(MMDistributedDataParallel):
    """:class:`MMDistributedDataParallel` that runs the module's own ``train_step``.

    MMEngine's wrapper reimplements ``train_step`` (preprocess, forward, parse losses, update)
    and so skips what a module does in its own step after the update, such as
    :class:`SILC`'s EMA teacher update. This wrapper calls
    ``module.train_step(data, optim_wrapper, ddp=self)``; the module sends its forward through
    ``ddp`` so that DDP still synchronizes the gradients. Modules whose ``train_step`` takes no
    ``ddp`` are stepped as by :class:`MMDistributedDataParallel`. Set it with
    ``model_wrapper_cfg=dict(type='mmseg.TrainStepDDP')``.

    Args:
        module (nn.Module): The model.
        broadcast_buffers (bool): DDP's option; False, as MMEngine's default wrapper, because
            the replicas' buffers stay identical by construction. Defaults to False.
        **kwargs: :class:`MMDistributedDataParallel`'s arguments.
    """

    def __init__(self, module, broadcast_buffers: bool = False, **kwargs) -> None:
        super().__init__(module=module, broadcast_buffers=broadcast_buffers, **kwargs)
        self._module_steps = 'ddp' in inspect.signature(module.train_step).parameters

    def train_step(self, data, optim_wrapper):
        if not self._module_steps:
            return super().train_step(data, optim_wrapper)
        return self.module.train_step(data, optim_wrapper, ddp=self)
