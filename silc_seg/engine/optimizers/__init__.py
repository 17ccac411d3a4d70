from .non_finite_guard_optim_wrapper import (NonFiniteGuardAmpOptimWrapper,
                                             NonFiniteGuardOptimWrapper,
                                             NonFiniteLossGuardMixin, nonfinite_ranks)

__all__ = [
    'NonFiniteGuardAmpOptimWrapper', 'NonFiniteGuardOptimWrapper', 'NonFiniteLossGuardMixin',
    'nonfinite_ranks'
]
