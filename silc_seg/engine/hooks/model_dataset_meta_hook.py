"""Give the model the metainfo (class names, palette) of the dataset it is evaluated on."""
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
    """

    priority = 'VERY_HIGH'

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

    def before_test(self, runner) -> None:
        self._set_meta(runner, runner.test_loop)
