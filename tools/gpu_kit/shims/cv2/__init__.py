"""Import-time stand-in for OpenCV on the GPU benchmark machine (see ``_gpu_kit_stub``).

``import mmcv`` (hence mmseg, mmpretrain and silc_seg) imports ``cv2`` and reads some of its
integer flags (``IMREAD_COLOR``, ``INTER_CUBIC``, ...) at import time; the GPU benchmarks never
decode or transform an image with it. Flags are distinct placeholder integers; calling any
function raises.
"""
import sys

from _gpu_kit_stub import install_stand_in

__version__ = '0.0.0+gpu-kit-stand-in'


def setNumThreads(num_threads):  # noqa: N802  (MMEngine's runner calls it: nothing to set)
    return None


def _flag(name):
    # IMREAD_COLOR, INTER_CUBIC, COLOR_BGR2RGB, BORDER_CONSTANT, ...
    return 1000 + sum(map(ord, name)) if name.upper() == name else None


install_stand_in(sys.modules[__name__], _flag)
