"""Import-time stand-in for torchvision on the GPU benchmark machine (see ``_gpu_kit_stub``).

Used only when neither the machine's torchvision nor the kit's wheel imports with the
machine's torch (a torchvision built for another torch fails at import). MMPretrain's data
transforms and metrics and OpenCLIP's preprocessing import it at module level; the GPU
benchmarks build models and feed them tensors, so no torchvision function runs.
"""
import sys

from _gpu_kit_stub import install_stand_in

__version__ = '0.0.0+gpu-kit-stand-in'
install_stand_in(sys.modules[__name__])
