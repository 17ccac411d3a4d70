from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log

from silc_seg.models.utils.compile import compile_transformer_blocks
from silc_seg.models.utils.wrappers import unwrap_model
from silc_seg.registry import HOOKS


@HOOKS.register_module()
class CompileBlocksHook(Hook):
    """``torch.compile`` every transformer block of the model before training or testing.

    Off unless listed in ``custom_hooks``::

        custom_hooks = [..., dict(type='CompileBlocksHook', compile_cfg=dict(mode='default'))]

    It compiles the blocks of all towers (student, EMA teacher, text tower) in place with
    :func:`~silc_seg.models.utils.compile.compile_transformer_blocks`, after the runner has
    built the model and loaded its weights. Unlike MMEngine's ``compile=True`` (which compiles the
    whole ``train_step``, optimizer and logging included), the Python around the blocks stays
    eager. The first iterations are slower while the blocks compile (once per input shape, e.g.
    global and local crops).

    Args:
        compile_cfg (dict, optional): Keyword arguments of ``torch.compile``.
    """

    priority = 'VERY_HIGH'

    def __init__(self, compile_cfg: Optional[dict] = None) -> None:
        self.compile_cfg = dict(compile_cfg or {})
        self.compiled = False

    def _compile(self, runner) -> None:
        if self.compiled:
            return
        model = unwrap_model(runner.model)
        count = compile_transformer_blocks(model, self.compile_cfg)
        self.compiled = True
        print_log(
            f'compiled {count} transformer blocks with torch.compile({self.compile_cfg})',
            logger='current')

    def before_train(self, runner) -> None:
        self._compile(runner)

    def before_test(self, runner) -> None:
        self._compile(runner)
