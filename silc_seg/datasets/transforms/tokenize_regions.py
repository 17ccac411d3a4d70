from typing import Callable, Union

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from silc_seg.registry import MODELS, TRANSFORMS


@TRANSFORMS.register_module()
class TokenizeRegions(BaseTransform):
    """Tokenize the regions of ``results['boxes']`` into fixed-size tensors for batching.

    Up to ``max_regions`` regions are drawn without replacement (numpy's global RNG, seeded by
    the datasets as for the caption choice, so runs repeat). Samples without ``boxes`` get
    all-invalid rows, so that they batch with the others and train on captions only. The boxes
    refer to the whole image: the model must decode them from a view that is the whole image
    (resized, neither cropped nor flipped), e.g. ``PackSILCInputs``' contrastive view.

    **Required Keys:** ``boxes`` (optional; list of ``{"box": [x0, y0, x1, y1], "text": str}``,
    as checked by the image-text datasets)

    **Added Keys:** ``region_text`` (``LongTensor(R, L)``), ``region_boxes``
    (``FloatTensor(R, 4)``), ``region_valid`` (``BoolTensor(R)``), with ``R = max_regions``.

    Args:
        tokenizer (dict | callable): The caption tokenizer (``list[str] -> (N, L)``).
        max_regions (int): Regions kept per sample. Defaults to 1.
    """

    def __init__(self, tokenizer: Union[dict, Callable], max_regions: int = 1) -> None:
        if max_regions < 1:
            raise ValueError(f'max_regions must be >= 1, got {max_regions}')
        self.tokenizer = MODELS.build(tokenizer) if isinstance(tokenizer, dict) else tokenizer
        self.max_regions = max_regions

    def transform(self, results: dict) -> dict:
        regions = results.get('boxes') or []
        if len(regions) > self.max_regions:
            keep = np.random.choice(len(regions), self.max_regions, replace=False)
            regions = [regions[i] for i in sorted(keep)]
        texts = [r['text'] for r in regions] + [''] * (self.max_regions - len(regions))
        tokens = self.tokenizer(texts)
        boxes = torch.zeros(self.max_regions, 4)
        valid = torch.zeros(self.max_regions, dtype=torch.bool)
        for i, region in enumerate(regions):
            boxes[i] = torch.tensor(region['box'], dtype=torch.float32)
            valid[i] = True
        tokens[~valid] = 0
        results.update(region_text=tokens, region_boxes=boxes, region_valid=valid)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(tokenizer={self.tokenizer!r}, '
                f'max_regions={self.max_regions})')
