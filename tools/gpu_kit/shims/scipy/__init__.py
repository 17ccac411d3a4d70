"""Import-time stand-in for SciPy on the GPU benchmark machine (see ``_gpu_kit_stub``).

MMSeg imports ``scipy.ndimage``, ``scipy.interpolate`` and ``scipy.optimize`` at module level
(data transforms, BEiT, Hausdorff loss, Hungarian assigner); none runs in the GPU benchmarks.
"""
import sys

from _gpu_kit_stub import install_stand_in

__version__ = '0.0.0+gpu-kit-stand-in'
install_stand_in(sys.modules[__name__])
