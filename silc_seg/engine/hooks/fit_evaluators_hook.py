"""Check, before iteration 1, that each validation metric has what it needs in data and model."""
import logging
from typing import List, Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import BaseLoop

from silc_seg.models.utils.wrappers import unwrap_model
from silc_seg.registry import HOOKS


def _needs_labels(metric) -> bool:
    # MMPretrain's classification metrics read ``gt_label`` (or ``gt_score``) and ``pred_score``.
    return type(metric).__module__.startswith('mmpretrain.evaluation')


def _label_counts(dataset) -> Optional[tuple]:
    """``(samples with gt_label, samples, largest label)``; None when the dataset cannot say
    before it is iterated (a stream)."""
    if not hasattr(dataset, 'get_data_info') or not hasattr(dataset, '__len__'):
        return None
    labelled, largest = 0, -1
    for index in range(len(dataset)):
        labels = dataset.get_data_info(index).get('gt_label')
        if labels is not None:
            labelled += 1
            largest = max([largest, *[int(label) for label in labels]])
    return labelled, len(dataset), largest


@HOOKS.register_module()
class FitEvaluatorsHook(Hook):
    """Let validation follow from what the data and the model have, checked in ``before_run``.

    An image-text set of one's own usually has captions but no class labels, and a model built
    with ``zero_shot_classes=None`` predicts no class scores; MMPretrain's metrics (the demo's
    zero-shot ``AveragePrecision``) then failed with ``KeyError: 'gt_label'`` / ``'pred_score'``
    after the last iteration. This hook, before iteration 1 (and before ``tools/test.py``
    evaluates):

    - leaves such metrics out, with one warning saying why, when no sample has ``gt_label`` or
      the model has no ``zero_shot_classes`` (validation is then retrieval only);
    - stops when only some samples have labels, or a label is no index of
      ``zero_shot_classes`` (the metric would fail or compare the wrong classes).

    Streams (WebDataset) are not checked: they cannot be listed before they are read.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        for name in ('_val_loop', '_test_loop'):
            loop = getattr(runner, name, None)
            if isinstance(loop, BaseLoop) and hasattr(loop, 'evaluator'):
                self._fit(runner, loop, name.strip('_').replace('_loop', ''))

    @staticmethod
    def _fit(runner, loop, stage: str) -> None:
        metrics = loop.evaluator.metrics
        needing = [metric for metric in metrics if _needs_labels(metric)]
        if not needing:
            return
        model = unwrap_model(runner.model)
        dataset = loop.dataloader.dataset
        source = getattr(dataset, 'ann_file', None) or type(dataset).__name__
        classes = getattr(model, 'zero_shot_classes', ())
        reasons: List[str] = []
        if classes is None:
            reasons.append('the model has no zero_shot_classes (model.zero_shot_classes=None)')
        counts = _label_counts(dataset)
        if counts is not None:
            labelled, total, largest = counts
            if labelled == 0:
                reasons.append(f'no sample of {source} has labels (the manifest has no '
                               '"labels" field)')
            elif labelled < total:
                raise ValueError(
                    f'{stage} data {source}: {labelled} of {total} samples have "labels", the '
                    'others none; zero-shot classification needs labels on every sample (or on '
                    'none, for retrieval only)')
            elif classes and largest >= len(classes):
                raise ValueError(
                    f'{stage} data {source}: label {largest} is no index of the model\'s '
                    f'{len(classes)} zero_shot_classes (0 to {len(classes) - 1})')
        if not reasons:
            return
        kept = [metric for metric in metrics if metric not in needing]
        loop.evaluator.metrics = kept
        left_out = ', '.join(type(metric).__name__ for metric in needing)
        what = ', '.join(type(metric).__name__ for metric in kept) or 'no metric'
        print_log(
            f'{stage}: {left_out} left out because {" and ".join(reasons)}; evaluating '
            f'{what} (image-text retrieval needs captions only)',
            logger='current',
            level=logging.WARNING)
