"""FSDP helpers: which modules become FSDP units, and the EMA teacher update on local shards.

Under MMEngine's ``FSDPStrategy`` the whole model (student, EMA teacher, losses) is one FSDP
root; :func:`silc_fsdp_wrap_policy` makes every transformer block and distillation head (of the
student *and* of the teacher) an FSDP unit of its own. A teacher unit and its student twin
(``teacher_image_encoder.blocks.3`` and ``image_encoder.blocks.3``) are flattened from the same
module structure, in the same order, with the same padding, so every rank holds the same slice
of both: the EMA needs no communication (:func:`fsdp_ema_update`). The few parameters left in
the root unit (class token, positional embedding and the like, not called through a module's
``forward``) are not aligned that way; their EMA runs on the full tensors under
``FSDP.summon_full_params(root, recurse=False)``, which gathers the root's own small flat
parameter only. Why this design: ``docs/scaling.md``.
"""
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.registry import FUNCTIONS
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

# Module types made FSDP units by default: the towers' blocks, the distillation / masked heads
# and their weight-normalized prototype layer (a unit of its own: while FreezeLastLayerHook
# drops its gradients it has no AdamW state, and FSDP's optimizer state dict wants all or none
# of a unit's trainable parameters to have state). Matched by class name (configs name them).
DEFAULT_UNIT_TYPES = ('TransformerBlock', 'DistillationHead', 'ParametrizedLinear',
                      'MaskedTokenDecoder')
# Module types whose activations are recomputed by default (silc_checkpoint_fn).
CHECKPOINT_TYPES = ('TransformerBlock', )
_WRAPPER_PARTS = ('_fsdp_wrapped_module', '_checkpoint_wrapped_module')


def clean_name(name: str) -> str:
    """A parameter or module name without FSDP's and activation checkpointing's wrapper parts
    (``image_encoder._fsdp_wrapped_module.blocks.0.x`` -> ``image_encoder.blocks.0.x``)."""
    return '.'.join(part for part in name.split('.') if part not in _WRAPPER_PARTS)


def is_fsdp(module) -> bool:
    """Whether ``module`` is a torch FSDP (FSDP1) wrapper."""
    return isinstance(module, FSDP)


def _matches(module: nn.Module, unit_types: Sequence[str]) -> bool:
    return type(module).__name__ in unit_types


@FUNCTIONS.register_module()
def silc_fsdp_wrap_policy(module: nn.Module,
                          recurse: bool,
                          nonwrapped_numel: int,
                          unit_types: Sequence[str] = DEFAULT_UNIT_TYPES) -> bool:
    """FSDP ``auto_wrap_policy``: one FSDP unit per module whose class name is in
    ``unit_types``; use it with ``model_wrapper=dict(auto_wrap_policy=dict(type=
    'silc_fsdp_wrap_policy'))``.

    Args:
        module (nn.Module): The module FSDP asks about.
        recurse (bool): True when FSDP asks whether to look inside ``module``.
        nonwrapped_numel (int): Unused (FSDP's signature).
        unit_types (Sequence[str]): Class names. Defaults to :data:`DEFAULT_UNIT_TYPES`.

    Returns:
        bool: Always True for ``recurse``, else whether ``module`` becomes a unit.
    """
    return True if recurse else _matches(module, unit_types)


@FUNCTIONS.register_module()
def silc_checkpoint_fn(module: nn.Module, unit_types: Sequence[str] = CHECKPOINT_TYPES) -> bool:
    """``check_fn`` of ``FSDPStrategy(activation_checkpointing=dict(check_fn=...))``: recompute
    the activations of every transformer block in the backward pass (inside its FSDP unit).
    Use it instead of the towers' ``with_cp=True``."""
    return _matches(module, unit_types)


def _unit_paths(root: FSDP) -> List[str]:
    """Clean module paths of the FSDP units under ``root`` (``''`` is the root itself)."""
    return [clean_name(path) for path, module in root.named_modules() if is_fsdp(module)]


def _owner(name: str, units: List[str]) -> str:
    """The deepest unit whose path is a prefix of the parameter ``name``."""
    owners = [unit for unit in units if unit == '' or name.startswith(unit + '.')]
    return max(owners, key=len)


def _ema_plan(root: FSDP, names: Sequence[Tuple[str, str]]) -> Dict[str, list]:
    """``(teacher, student)`` parameter name pairs, split into ``'local'`` (in twin non-root
    units: same local slice on every rank) and ``'root'`` (in the root unit)."""
    units = _unit_paths(root)
    params = {clean_name(n) for n, _ in root.named_parameters()}
    plan: Dict[str, list] = dict(local=[], root=[])
    for teacher, student in names:
        for name in sorted(n for n in params if n.startswith(teacher + '.')):
            twin = student + name[len(teacher):]
            if twin not in params:
                raise RuntimeError(f'EMA teacher parameter {name} has no student twin {twin}')
            owner, twin_owner = _owner(name, units), _owner(twin, units)
            if owner == '' and twin_owner == '':
                plan['root'].append((name, twin))
            elif (owner and twin_owner.startswith(student)
                  and owner == teacher + twin_owner[len(student):]):
                plan['local'].append((name, twin))
            else:
                raise RuntimeError(
                    f'{name} is in FSDP unit {owner!r} but its student twin {twin} in '
                    f'{twin_owner!r}: wrap the teacher exactly as the student (one '
                    'auto_wrap_policy for both) so that the EMA can run on local shards')
    print_log(
        f'FSDP EMA teacher: {len(plan["local"])} parameters updated on local shards, '
        f'{len(plan["root"])} in the root unit (gathered)',
        logger='current')
    return plan


@torch.no_grad()
def fsdp_ema_update(root: FSDP, names: Sequence[Tuple[str, str]], momentum: float) -> None:
    """``teacher <- momentum * teacher + (1 - momentum) * student`` for an FSDP-wrapped model
    (``use_orig_params=True``), each rank on its own shards; buffers copied. Call it on every
    rank (the root unit's parameters are gathered, a collective).

    Args:
        root (FSDP): The FSDP root wrapping the model.
        names (Sequence[tuple[str, str]]): ``(teacher, student)`` attribute names
            (``SILC.teacher_student_names``).
        momentum (float): In ``[0, 1)``.
    """
    if not getattr(root, '_use_orig_params', True):
        raise RuntimeError('the FSDP EMA teacher update needs use_orig_params=True')
    plan = getattr(root, '_silc_ema_plan', None)
    if plan is None or plan['names'] != list(names):
        plan = dict(_ema_plan(root, names), names=list(names))
        root._silc_ema_plan = plan
    _ema_pairs(root, plan['local'], momentum, check_shapes=True)
    if plan['root']:
        with FSDP.summon_full_params(root, recurse=False, writeback=True):
            _ema_pairs(root, plan['root'], momentum, check_shapes=True)
    buffers = {clean_name(n): b for n, b in root.named_buffers()}
    for teacher, student in names:
        for name, buffer in buffers.items():
            if name.startswith(teacher + '.'):
                buffer.copy_(buffers[student + name[len(teacher):]])


def _ema_pairs(root: FSDP, pairs: list, momentum: float, check_shapes: bool) -> None:
    params = {clean_name(n): p for n, p in root.named_parameters()}
    teachers, students = [], []
    for teacher, student in pairs:
        t, s = params[teacher], params[student]
        if check_shapes and t.shape != s.shape:
            raise RuntimeError(f'local shards differ: {teacher} {tuple(t.shape)} vs {student} '
                               f'{tuple(s.shape)}')
        if t.numel():
            teachers.append(t)
            students.append(s.detach())
    if teachers:
        torch._foreach_mul_(teachers, momentum)
        torch._foreach_add_(teachers, students, alpha=1 - momentum)
