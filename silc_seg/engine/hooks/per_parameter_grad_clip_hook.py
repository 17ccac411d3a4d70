from typing import Iterable, Optional

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook

from silc_seg.models.utils.fsdp import is_fsdp
from silc_seg.registry import HOOKS


@torch.no_grad()
def clip_grad_per_parameter_(params: Iterable[torch.Tensor], max_norm: float) -> None:
    """Clip the gradient of each parameter to L2 norm ``max_norm`` on its own.

    DINO's ``utils.clip_gradients`` (facebookresearch/dino, ``utils.py``): every gradient whose
    norm exceeds ``max_norm`` is scaled by ``max_norm / (norm + 1e-6)``; the others are left
    alone. Unlike global-norm clipping, one exploding parameter (often the prototype layer)
    does not shrink the update of every other parameter.

    Args:
        params (Iterable[Tensor]): Parameters; those without a gradient are skipped.
        max_norm (float): Largest allowed gradient norm per parameter.
    """
    for param in params:
        if param.grad is None:
            continue
        scale = max_norm / (param.grad.norm(2) + 1e-6)
        # Only ever shrinks (as the reference's `if clip_coef < 1`), without a host sync.
        param.grad.mul_(scale.clamp(max=1.0))


@torch.no_grad()
def clip_grad_per_parameter_sharded_(params: Iterable[torch.Tensor], max_norm: float) -> None:
    """:func:`clip_grad_per_parameter_` for parameters sharded over the ranks (FSDP with
    ``use_orig_params=True``: each rank holds a slice of every parameter, possibly empty, and
    the slice's gradient). Each parameter's norm is that of its whole gradient, the square root
    of the sum over ranks of its slices' squared norms (one all-reduce per step). Call it on
    every rank with the same parameters in the same order.

    Args:
        params (Iterable[Tensor]): Parameters (local slices); a missing gradient counts as 0.
        max_norm (float): Largest allowed gradient norm per parameter.
    """
    params = list(params)
    grads = [param.grad for param in params if param.grad is not None]
    device = grads[0].device if grads else torch.device('cpu')
    zero = torch.zeros((), device=device)
    squares = torch.stack([
        param.grad.detach().float().pow(2).sum() if param.grad is not None else zero
        for param in params
    ]) if params else zero.reshape(0)
    all_reduce(squares, op='sum')  # in place; a no-op in a single process
    scales = (max_norm / (squares.sqrt() + 1e-6)).clamp(max=1.0)
    for param, scale in zip(params, scales):
        if param.grad is not None:
            param.grad.mul_(scale.to(param.grad.dtype))


def register_step_pre_hook(runner, hook_fn, owner: str):
    """Register ``hook_fn`` to run before every step of the runner's optimizer.

    It runs inside ``optimizer.step()``: after gradient accumulation, after the gradients are
    all-reduced (DDP) and unscaled (AMP), and never on a step the optim wrapper skips.
    """
    optimizer = getattr(runner.optim_wrapper, 'optimizer', None)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise RuntimeError(f'{owner} needs one optim wrapper with one optimizer, got '
                           f'{type(runner.optim_wrapper).__name__}')
    return optimizer.register_step_pre_hook(hook_fn)


@HOOKS.register_module()
class PerParameterGradClipHook(Hook):
    """Per-parameter gradient clipping before every optimizer step (DINO's recipe).

    DINO clips every student parameter's gradient to norm 3.0 on its own
    (``--clip_grad 3.0``, ``utils.clip_gradients`` in facebookresearch/dino), where MMEngine's
    ``clip_grad=dict(max_norm=...)`` clips the global norm. This hook applies
    :func:`clip_grad_per_parameter_` to every parameter the optimizer updates, right before
    ``optimizer.step()`` (see :func:`register_step_pre_hook`); under FSDP (a sharded model),
    :func:`clip_grad_per_parameter_sharded_` reduces each norm over the shards. Use it with
    ``optim_wrapper.clip_grad=None`` (both would clip).

    Args:
        max_norm (float): Largest gradient norm per parameter. Defaults to 3.0 (DINO).
    """

    priority = 'NORMAL'

    def __init__(self, max_norm: float = 3.0) -> None:
        if max_norm <= 0:
            raise ValueError(f'max_norm must be positive, got {max_norm}')
        self.max_norm = max_norm
        self._handle: Optional[object] = None

    def before_train(self, runner) -> None:
        if getattr(runner.optim_wrapper, 'clip_grad_kwargs', None):
            runner.logger.warning('PerParameterGradClipHook runs after the optim wrapper\'s '
                                  'global-norm clip_grad; set optim_wrapper.clip_grad=None to '
                                  'clip per parameter only, as DINO does')

        # Under FSDP each rank holds slices: the norms are reduced over the ranks.
        clip_fn = clip_grad_per_parameter_sharded_ if is_fsdp(runner.model) else \
            clip_grad_per_parameter_

        def clip(optimizer, args, kwargs):
            clip_fn([param for group in optimizer.param_groups for param in group['params']],
                    self.max_norm)

        self._handle = register_step_pre_hook(runner, clip, type(self).__name__)

    def after_train(self, runner) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
