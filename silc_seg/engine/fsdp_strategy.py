"""MMEngine's FSDPStrategy with the optimizer-state loading that torch >= 2.2 expects."""
from mmengine._strategy import FSDPStrategy
from mmengine.registry import STRATEGIES
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP


@STRATEGIES.register_module()
class SILCFSDPStrategy(FSDPStrategy):
    """:class:`~mmengine._strategy.FSDPStrategy` whose :meth:`load_optim_state_dict` calls
    ``FSDP.optim_state_dict_to_load`` with keywords.

    MMEngine 0.10.7 passes ``(state_dict, model, optim)`` positionally, the argument order of
    torch < 2.2; torch 2.2 reordered them to ``(model, optim, optim_state_dict)``, so every
    ``--resume`` of an FSDP run failed (``TypeError: unhashable type: 'dict'``). MMEngine's main
    branch has the same fix after 0.10.7. Same arguments as ``FSDPStrategy``; use it with
    ``strategy=dict(type='SILCFSDPStrategy', ...)``.
    """

    def load_optim_state_dict(self, state_dict: dict) -> None:
        optim_state_dict = FSDP.optim_state_dict_to_load(
            model=self.model, optim=self.optim_wrapper.optimizer, optim_state_dict=state_dict)
        self.optim_wrapper.load_state_dict(optim_state_dict)
