from mmengine.hooks import Hook

from silc_seg.registry import HOOKS
from silc_seg.utils.checkpoint import from_safe_checkpoint, to_safe_checkpoint


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Make runner checkpoints loadable with ``torch.load(weights_only=True)``.

    Stores MMEngine's message-hub history buffers and numpy values as plain containers and tensors
    when a checkpoint is saved, and rebuilds them when one is loaded, so that ``--resume`` works on
    torch>=2.6 without turning off ``weights_only`` (see :mod:`silc_seg.utils.checkpoint`).

    Its priority is ``'VERY_LOW'`` so that on save it runs after every other hook has added its
    entries. ``tools/train.py`` inserts it into every config that does not list it.
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        to_safe_checkpoint(checkpoint)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        from_safe_checkpoint(checkpoint)
