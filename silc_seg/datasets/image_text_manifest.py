import csv
import json
import os.path as osp
from typing import Any, Dict, List, Optional

from mmengine.dataset import BaseDataset
from mmengine.fileio import get_local_path

from silc_seg.registry import DATASETS
from .image_text_utils import (BadSample, decode_image, log_skipped, pick_caption, read_file_bytes,
                               valid_boxes, valid_captions)


@DATASETS.register_module()
class ImageTextManifestDataset(BaseDataset):
    """Image-text pairs listed in a JSONL or CSV manifest.

    One sample per line (JSONL) or row (CSV with a header)::

        {"image": "000001.jpg", "caption": "red stripes", "extra_captions": ["a striped thing"],
         "labels": [3], "boxes": [{"box": [0.1, 0.2, 0.6, 0.9], "text": "red stripes"}]}

        image,caption,extra_captions
        000001.jpg,red stripes,a striped thing||stripes in red

    Relative image paths are joined to ``data_root`` / ``data_prefix['img_path']``. Each fetch
    draws one caption among the main and the extra ones (numpy's global RNG, which MMEngine seeds
    per worker, so runs repeat exactly). The dataset reads and decodes the image itself, so the
    pipeline starts after ``LoadImageFromFile`` (with ``img``, ``img_path``, ``caption``,
    ``sample_idx``, ``ori_shape``, ``img_shape`` and ``num_skipped`` set, and ``boxes`` for a
    sample with regions).

    ``boxes`` (optional, JSONL; a JSON string in CSV): regions of the image, each
    ``{"box": [x0, y0, x1, y1], "text": ...}`` with coordinates normalised to ``[0, 1]`` of the
    image width / height, for LocCa's referring-expression and grounded-captioning targets
    (:class:`~silc_seg.models.heads.LocCaDecoder`); samples without it train on captions only.
    Malformed regions make the sample bad (``invalid_boxes``).

    A bad sample (missing or undecodable image, empty or non-text caption, pipeline returning
    ``None``) is logged, counted and replaced by a random other one (MMEngine's ``_rand_another``);
    the number skipped before a good sample is its ``num_skipped``. In ``test_mode`` a bad sample
    raises, since replacing it would change the evaluation set.

    Args:
        ann_file (str): The manifest, ``.jsonl`` / ``.json`` (one object a line) or ``.csv``.
        image_key (str): Field with the image path. Defaults to ``'image'``.
        caption_key (str): Field with the main caption. Defaults to ``'caption'``.
        extra_captions_key (str): Optional field with more captions: a list (JSONL) or a string
            split on ``extra_captions_sep`` (CSV). Defaults to ``'extra_captions'``.
        extra_captions_sep (str): Separator of extra captions in CSV. Defaults to ``'||'``.
        label_key (str, optional): Optional field with a list of class indices (multi-label
            ground truth for zero-shot classification), stored as ``gt_label``. Defaults to
            ``'labels'``.
        boxes_key (str, optional): Optional field with the regions (see above). Defaults to
            ``'boxes'``.
        color_type (str): ``mmcv.imfrombytes`` flag. Defaults to ``'color'``.
        imdecode_backend (str): ``mmcv.imfrombytes`` backend. Defaults to ``'cv2'``.
        backend_args (dict, optional): MMEngine file backend arguments.
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (``data_root``,
            ``data_prefix``, ``pipeline``, ``test_mode``, ``indices``, ``max_refetch``, ...).
    """

    def __init__(self,
                 ann_file: str,
                 image_key: str = 'image',
                 caption_key: str = 'caption',
                 extra_captions_key: str = 'extra_captions',
                 extra_captions_sep: str = '||',
                 label_key: Optional[str] = 'labels',
                 boxes_key: Optional[str] = 'boxes',
                 color_type: str = 'color',
                 imdecode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None,
                 data_prefix: dict = dict(img_path=''),
                 **kwargs) -> None:
        self.image_key = image_key
        self.caption_key = caption_key
        self.extra_captions_key = extra_captions_key
        self.extra_captions_sep = extra_captions_sep
        self.label_key = label_key
        self.boxes_key = boxes_key
        self.color_type = color_type
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args
        super().__init__(ann_file=ann_file, data_prefix=data_prefix, **kwargs)

    def _read_records(self) -> List[Dict[str, Any]]:
        ext = osp.splitext(self.ann_file)[1].lower()
        with get_local_path(self.ann_file, self.backend_args) as local_path:
            if ext == '.csv':
                with open(local_path, newline='', encoding='utf-8') as f:
                    records = list(csv.DictReader(f))
                for record in records:
                    extra = record.get(self.extra_captions_key)
                    record[self.extra_captions_key] = (
                        extra.split(self.extra_captions_sep) if extra else [])
                return records
            if ext not in ('.jsonl', '.json'):
                raise ValueError(f'unsupported manifest format {ext!r} ({self.ann_file}); '
                                 'use .jsonl (one JSON object a line) or .csv')
            records = []
            with open(local_path, encoding='utf-8') as f:
                for line_no, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as err:
                        raise ValueError(
                            f'{self.ann_file}:{line_no} is not valid JSON: {err}') from err
            return records

    def load_data_list(self) -> List[dict]:
        """Read the manifest into MMEngine data infos.

        Returns:
            list[dict]: ``img_path``, ``captions`` (raw values; checked at fetch time so that bad
            ones are counted) and, when present, ``gt_label``.
        """
        img_prefix = self.data_prefix.get('img_path', '') or ''
        data_list = []
        for i, record in enumerate(self._read_records()):
            if self.image_key not in record or self.caption_key not in record:
                raise KeyError(f'{self.ann_file}: record {i} lacks "{self.image_key}" or '
                               f'"{self.caption_key}": {record!r:.200}')
            extra = record.get(self.extra_captions_key) or []
            if not isinstance(extra, list):
                extra = [extra]
            info = dict(
                img_path=osp.join(img_prefix, str(record[self.image_key])),
                captions=[record[self.caption_key]] + extra)
            if self.label_key and record.get(self.label_key) is not None:
                info['gt_label'] = [int(x) for x in record[self.label_key]]
            if self.boxes_key and record.get(self.boxes_key) not in (None, ''):
                info['boxes'] = record[self.boxes_key]  # checked at fetch time (counted)
            data_list.append(info)
        return data_list

    def load_sample(self, idx: int) -> dict:
        """Read, decode and caption sample ``idx`` (the steps before the pipeline).

        Raises:
            BadSample: When the sample cannot be used.
        """
        info = self.get_data_info(idx)
        source = info['img_path']
        captions = valid_captions(info.pop('captions'), source)
        if 'boxes' in info:
            boxes = info['boxes']
            if isinstance(boxes, str):  # a CSV cell
                try:
                    boxes = json.loads(boxes)
                except json.JSONDecodeError as err:
                    raise BadSample('invalid_boxes', source, repr(err)) from err
            info['boxes'] = valid_boxes(boxes, source)
        img = decode_image(
            read_file_bytes(source, self.backend_args), source, self.color_type,
            self.imdecode_backend)
        info.update(
            img=img,
            caption=pick_caption(captions),
            ori_shape=img.shape[:2],
            img_shape=img.shape[:2])
        return info

    def __getitem__(self, idx: int) -> dict:
        if not self._fully_initialized:
            self.full_init()
        num_skipped = 0
        for _ in range(self.max_refetch + 1):
            try:
                results = self.load_sample(idx)
                results['num_skipped'] = num_skipped
                data = self.pipeline(results)
                if data is None:
                    raise BadSample('dropped_by_pipeline', results['img_path'])
                return data
            except BadSample as err:
                if self.test_mode:
                    raise RuntimeError(
                        f'bad sample in a test-mode dataset, which cannot skip it: {err}') from err
                log_skipped(err)
                num_skipped += 1
                idx = self._rand_another()
        raise RuntimeError(f'{self.max_refetch + 1} bad samples in a row in {self.ann_file}; '
                           'check the manifest and the image root')
