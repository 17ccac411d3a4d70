import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors import SegTTAModel
from mmseg.structures import SegDataSample
from mmseg.utils import SampleList

from silc_seg.registry import MODELS


@MODELS.register_module()
class ScoreAveragingTTAModel(SegTTAModel):
    """mmseg's ``SegTTAModel`` for segmentors whose ``seg_logits`` are already class scores.

    :class:`~silc_seg.models.segmentors.ZeroShotSegmentor` (class probabilities) and
    :class:`~silc_seg.models.segmentors.CATSeg` (per-class sigmoid scores) return, for every
    augmented view, scores flipped back and resized to the original image. ``SegTTAModel`` would
    apply a softmax to them again and take the arg-max, dropping the zero-shot background rules;
    this model averages the scores of the views and labels the average with the segmentor's own
    rule (its decode head's ``predict_labels`` when it has one, the arg-max otherwise).

    Used by ``tools/test.py --tta`` (``tta_model=dict(type='ScoreAveragingTTAModel')``).
    """

    def merge_preds(self, data_samples_list: list) -> SampleList:
        """Average the scores of each image's views and label the average.

        Args:
            data_samples_list (list[list[SegDataSample]]): per image, its augmented views.

        Returns:
            list[SegDataSample]: one sample per image with the averaged ``seg_logits`` and the
            ``pred_sem_seg`` from them.
        """
        head = getattr(self.module, 'decode_head', None)
        predictions = []
        for views in data_samples_list:
            scores = torch.stack([view.seg_logits.data for view in views]).mean(dim=0)
            if hasattr(head, 'predict_labels'):
                labels = head.predict_labels(scores)
            else:
                labels = scores.argmax(dim=0, keepdim=True)
            merged = SegDataSample(metainfo=views[0].metainfo)
            merged.seg_logits = PixelData(data=scores)
            merged.pred_sem_seg = PixelData(data=labels)
            if 'gt_sem_seg' in views[0]:
                merged.gt_sem_seg = views[0].gt_sem_seg
            predictions.append(merged)
        return predictions
