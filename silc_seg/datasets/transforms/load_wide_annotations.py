"""Load segmentation maps whose label values exceed 255 (ADE20K-847, Pascal-Context-459)."""
import mmcv
import numpy as np
from mmengine import fileio
from mmseg.datasets.transforms import LoadAnnotations

from silc_seg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadWideAnnotations(LoadAnnotations):
    """``LoadAnnotations`` for 16-bit label maps (e.g. the ``.tif`` files of CAT-Seg's
    ADE20K-847 and Pascal-Context-459 preparation, ignore value 65535).

    mmseg's ``LoadAnnotations`` casts the map to ``uint8``, which would wrap every label above 255
    onto another class; this transform keeps the values (as ``int64``). A dataset ``label_map``
    is applied; ``reduce_zero_label`` is not supported (the prepared maps are already 0-based).
    """

    def _load_seg_map(self, results: dict) -> None:
        if self.reduce_zero_label or results.get('reduce_zero_label'):
            raise ValueError('LoadWideAnnotations does not support reduce_zero_label: prepare '
                             'the maps 0-based, with the ignore value set')
        img_bytes = fileio.get(results['seg_map_path'], backend_args=self.backend_args)
        seg_map = mmcv.imfrombytes(
            img_bytes, flag='unchanged', backend=self.imdecode_backend).squeeze()
        if seg_map.ndim != 2 or not np.issubdtype(seg_map.dtype, np.integer):
            raise ValueError(f'{results["seg_map_path"]}: expected a single-channel integer label '
                             f'map, got {seg_map.dtype} of shape {seg_map.shape}')
        seg_map = seg_map.astype(np.int64)
        if results.get('label_map'):
            original = seg_map.copy()
            for old_id, new_id in results['label_map'].items():
                seg_map[original == old_id] = new_id
        results['gt_seg_map'] = seg_map
        results['seg_fields'].append('gt_seg_map')
