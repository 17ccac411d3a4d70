from .frozen_params_constructor import FrozenParamsOptimWrapperConstructor
from .non_finite_guard_optim_wrapper import (NonFiniteGuardAmpOptimWrapper,
                                             NonFiniteGuardOptimWrapper, NonFiniteLossGuardMixin,
                                             nonfinite_ranks)

__all__ = [
    'FrozenParamsOptimWrapperConstructor', 'NonFiniteGuardAmpOptimWrapper',
    'NonFiniteGuardOptimWrapper', 'NonFiniteLossGuardMixin', 'nonfinite_ranks'
]
