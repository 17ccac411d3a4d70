from typing import Optional, Sequence

from mmengine.hooks import Hook

from silc_seg.engine.hooks.per_parameter_grad_clip_hook import register_step_pre_hook
from silc_seg.models.utils.fsdp import clean_name
from silc_seg.models.utils.wrappers import unwrap_model
from silc_seg.registry import HOOKS


@HOOKS.register_module()
class FreezeLastLayerHook(Hook):
    """Keep the distillation head's prototype layer fixed during the first iterations (DINO).

    DINO drops the gradients of its head's ``last_layer`` during the first epoch
    (``--freeze_last_layer 1``, ``utils.cancel_gradients_last_layer`` in
    facebookresearch/dino): while the backbone and the rest of the head are still near their
    random start, moving prototypes chase noise and training is less stable. Before every
    optimizer step of iterations ``< freeze_iters`` this hook sets the gradient of the matching
    parameters to None, so the optimizer leaves them untouched (no AdamW moment update and no
    weight decay either, as in DINO).

    Args:
        freeze_iters (int): Iterations during which the layer stays fixed (DINO: one epoch).
        param_prefixes (Sequence[str]): Names (prefixes, as in ``model.named_parameters()``)
            of the frozen parameters. Defaults to ``('distill_head.last_layer',)``.
    """

    priority = 'NORMAL'

    def __init__(
        self, freeze_iters: int,
        param_prefixes: Sequence[str] = ('distill_head.last_layer', )) -> None:
        if freeze_iters < 0:
            raise ValueError(f'freeze_iters must be >= 0, got {freeze_iters}')
        self.freeze_iters = freeze_iters
        self.param_prefixes = tuple(param_prefixes)
        self._iter = 0
        self._handle: Optional[object] = None

    def before_train(self, runner) -> None:
        model = unwrap_model(runner.model)
        # clean_name: under FSDP / activation checkpointing, names have wrapper parts.
        frozen = [
            param for name, param in model.named_parameters()
            if clean_name(name).startswith(self.param_prefixes) and param.requires_grad
        ]
        if not frozen:
            raise RuntimeError(f'FreezeLastLayerHook: no trainable parameter of '
                               f'{type(model).__name__} starts with {self.param_prefixes}')
        frozen_ids = {id(param) for param in frozen}

        def cancel(optimizer, args, kwargs):
            if self._iter >= self.freeze_iters:
                return
            for group in optimizer.param_groups:
                for param in group['params']:
                    if id(param) in frozen_ids:
                        param.grad = None

        self._handle = register_step_pre_hook(runner, cancel, type(self).__name__)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._iter = runner.iter

    def after_train(self, runner) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
