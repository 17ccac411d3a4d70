"""Give the model the metainfo (class names, palette) of the dataset it is evaluated on."""
from contextlib import ExitStack

from mmengine.hooks import Hook

from silc_seg.models.utils.wrappers import unwrap_model
from silc_seg.registry import HOOKS


@HOOKS.register_module()
class ModelDatasetMetaHook(Hook):
    """Set ``model.dataset_meta`` from the val/test dataloader's dataset before evaluation.

    MMEngine's loops hand the dataset metainfo to the evaluator and the visualizer but not to the
    model. Open-vocabulary segmentors (:class:`~silc_seg.models.ZeroShotSegmentor`) build their
    text classifier from the class names, so they need it too. Models without a ``dataset_meta``
    attribute are left alone.

    For the length of each val / test run the model's text classifier (if it has one) is
    :meth:`~silc_seg.models.utils.TextClassifier.frozen`: its weights are fingerprinted once per
    run instead of once per batch.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._frozen = ExitStack()

    def _freeze_text(self, runner) -> None:
        classifier = getattr(unwrap_model(runner.model), 'text_classifier', None)
        if hasattr(classifier, 'frozen'):
            self._frozen.enter_context(classifier.frozen())

    @staticmethod
    def _set_meta(runner, loop) -> None:
        model = unwrap_model(runner.model)  # also the segmentor inside tools/test.py --tta
        if not hasattr(model, 'dataset_meta'):
            return
        metainfo = getattr(loop.dataloader.dataset, 'metainfo', None)
        if metainfo is None:
            raise RuntimeError(
                f'{type(loop.dataloader.dataset).__name__} has no metainfo, so '
                f'{type(model).__name__} cannot read the class names from it; set them in the '
                'model config instead')
        model.dataset_meta = metainfo

    def before_val(self, runner) -> None:
        self._set_meta(runner, runner.val_loop)
        self._freeze_text(runner)

    def after_val(self, runner) -> None:
        self._frozen.close()

    def before_test(self, runner) -> None:
        self._set_meta(runner, runner.test_loop)
        self._freeze_text(runner)

    def after_test(self, runner) -> None:
        self._frozen.close()
