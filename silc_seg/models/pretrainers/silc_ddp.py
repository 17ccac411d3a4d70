from mmengine.model import MMDistributedDataParallel
from silc_seg.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class SILCDistributedDataParallel(MMDistributedDataParallel):
    """:class:`MMDistributedDataParallel` that keeps :meth:`SILC.train_step`'s handling of
    non-finite losses (``skip_nonfinite_steps``): MMEngine's wrapper re-implements
    ``train_step`` and would always apply the update.

    Use with ``model_wrapper_cfg = dict(type='mmseg.SILCDistributedDataParallel')``.
    """

    def train_step(self, data, optim_wrapper):
        return self.module.guarded_train_step(data, optim_wrapper, self)
