"""Regional ``torch.compile``: compile each transformer block of a model in place."""
from typing import Optional

from torch import nn

from ..layers.transformer import TransformerBlock


def compile_transformer_blocks(model: nn.Module,
                               compile_cfg: Optional[dict] = None,
                               block_types=(TransformerBlock, )) -> int:
    """Compile every block of ``block_types`` in ``model`` with :meth:`nn.Module.compile`.

    Compiling the repeated blocks rather than the whole model ("regional compilation") compiles
    one graph per distinct block shape instead of one huge one, so it is ready in seconds, and it
    leaves the Python around the blocks (losses, hooks, logging, the optimizer) uncompiled.
    Parameter names and state-dict keys are unchanged. It must run after every
    ``copy.deepcopy`` of the model or its towers (e.g. the SILC teacher): a deep copy of a
    compiled module would keep calling the original's forward.

    Args:
        model (nn.Module): The model, e.g. ``SILC``, ``ZeroShotSegmentor`` or ``CATSeg``.
        compile_cfg (dict, optional): Keyword arguments of ``torch.compile`` (``mode``,
            ``dynamic``, ``fullgraph``, ``backend``, ...). Defaults to none.
        block_types (tuple[type]): Module types to compile. Defaults to ``TransformerBlock``.

    Returns:
        int: How many blocks were compiled.
    """
    blocks = [m for m in model.modules() if isinstance(m, block_types)]
    for block in blocks:
        block.compile(**(compile_cfg or {}))
    return len(blocks)
