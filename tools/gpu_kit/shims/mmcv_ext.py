"""Stand-in for mmcv's compiled ``mmcv._ext`` (copied into mmcv-lite by the GPU kit).

``import mmseg.models`` imports ``mmcv.ops`` (via ``mmseg.utils.mask_classification``, for the
pure-PyTorch ``point_sample``), and ``mmcv/ops/__init__.py`` loads every op module, each of
which looks its kernels up in ``mmcv._ext``. mmcv-lite has no ``_ext``; building mmcv's CUDA
ops takes longer than the kit's GPU time. The SILC, CLIP, zero-shot and CAT-Seg benchmark paths
call no compiled mmcv op (``grep -r mmcv.ops silc_seg`` is empty), so this module answers every
kernel lookup with a name that raises when called.
"""
from _gpu_kit_stub import stub_getattr

__getattr__ = stub_getattr('mmcv._ext')
