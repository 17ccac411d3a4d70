"""Optimizer wrappers that refuse to apply the update of a step whose loss is not finite."""
import warnings
from typing import List

import torch
from mmengine.dist import all_gather, get_dist_info
from mmengine.logging import MessageHub
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from silc_seg.registry import OPTIM_WRAPPERS


def nonfinite_ranks(loss: torch.Tensor) -> List[int]:
    """Ranks whose ``loss`` is not finite (the same list on every rank).

    Args:
        loss (Tensor): This rank's loss.

    Returns:
        list[int]: Ranks, ascending; empty when every rank's loss is finite. In a single process,
        ``[0]`` or ``[]``.
    """
    finite = torch.isfinite(loss.detach()).all().reshape(1).to(torch.uint8)
    flags = all_gather(finite)
    return [rank for rank, flag in enumerate(flags) if not bool(flag.item())]


class NonFiniteLossGuardMixin:
    """Checks the loss before ``update_params`` backpropagates it; put it before an
    :class:`OptimWrapper` class in the bases.

    Every rank learns whether the loss is finite on every rank (one all-gather of a one-byte flag
    per step), so that all ranks take the same decision and DistributedDataParallel replicas stay
    identical. On a non-finite loss anywhere:

    - ``skip_nonfinite_steps=False``: raise :class:`FloatingPointError` on every rank, naming the
      iteration, the ranks and this rank's loss;
    - ``skip_nonfinite_steps=True``: no backward pass, gradients zeroed (under gradient
      accumulation this drops the window accumulated so far), no optimizer step; the skip is
      counted in the message hub (info ``nonfinite_skips``, scalar ``train/nonfinite_skips``),
      warned about, and :meth:`update_params` returns False, which tells the model's
      ``train_step`` to leave its EMA teacher untouched as well.

    The guard sees only the summed loss that ``BaseModel.parse_losses`` returns; the per-term
    values of a skipped step appear in that iteration's log.

    Args:
        skip_nonfinite_steps (bool): Skip instead of raising. Defaults to False.
        **kwargs: The wrapped class's arguments.
    """

    def __init__(self, *args, skip_nonfinite_steps: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.skip_nonfinite_steps = skip_nonfinite_steps

    def update_params(self, loss: torch.Tensor, *args, **kwargs) -> bool:
        """Backward and (when :meth:`should_update`) step as the wrapped class does.

        Returns:
            bool: False when the step was skipped for a non-finite loss, else True.
        """
        bad_ranks = nonfinite_ranks(loss)
        if not bad_ranks:
            super().update_params(loss, *args, **kwargs)
            return True
        message_hub = MessageHub.get_current_instance()
        rank, world_size = get_dist_info()
        iteration = message_hub.get_info('iter')
        where = f' on rank(s) {bad_ranks} of {world_size}' if world_size > 1 else ''
        message = (f'non-finite loss at iteration {iteration}{where} '
                   f'(loss={loss.item():.6g} on rank {rank})')
        if not self.skip_nonfinite_steps:
            raise FloatingPointError(
                f'{message}. Lower the learning rate, enable gradient clipping, or set '
                'optim_wrapper.skip_nonfinite_steps=True to skip such steps.')
        self.zero_grad()
        skips = message_hub.get_info('nonfinite_skips', 0) + 1
        message_hub.update_info('nonfinite_skips', skips)
        message_hub.update_scalar('train/nonfinite_skips', skips)
        warnings.warn(f'{message}; skipped the optimizer step ({skips} skipped so far)')
        return False


@OPTIM_WRAPPERS.register_module()
class NonFiniteGuardOptimWrapper(NonFiniteLossGuardMixin, OptimWrapper):
    """:class:`OptimWrapper` with the non-finite loss guard of
    :class:`NonFiniteLossGuardMixin`."""


@OPTIM_WRAPPERS.register_module()
class NonFiniteGuardAmpOptimWrapper(NonFiniteLossGuardMixin, AmpOptimWrapper):
    """:class:`AmpOptimWrapper` (mixed precision, e.g. ``dtype='bfloat16'``) with the non-finite
    loss guard of :class:`NonFiniteLossGuardMixin`. The check runs on the unscaled loss, before
    the loss scaler; fp16's dynamic loss scaling still handles non-finite *gradients* itself."""
