"""Test-time augmentation settings derived from a config's test pipeline."""
import copy
from typing import List, Sequence

from mmengine.config import Config

_RESIZE_TYPES = ('Resize', 'mmseg.Resize', 'mmcv.Resize')
_LOAD_IMAGE_TYPES = ('LoadImageFromFile', 'mmseg.LoadImageFromFile', 'mmcv.LoadImageFromFile')


def build_tta_pipeline(test_pipeline: Sequence[dict],
                       scale_factors: Sequence[float] = (1.0, ),
                       flip: bool = True) -> List[dict]:
    """A ``TestTimeAug`` pipeline: the test pipeline at several scales, with and without a
    horizontal flip.

    The test pipeline must load the image first and hold one ``Resize``; each scale factor
    multiplies that resize's target size (``scale``) or ``scale_factor``. The other transforms
    run unchanged, in their order, on every view.

    Args:
        test_pipeline (Sequence[dict]): the config's test pipeline.
        scale_factors (Sequence[float]): size multipliers; ``(1.0, )`` keeps the test size.
        flip (bool): add the horizontally flipped view of every scale.

    Returns:
        list[dict]: ``[LoadImageFromFile, TestTimeAug(...)]``.
    """
    pipeline = [dict(step) for step in test_pipeline]
    if not pipeline or pipeline[0].get('type') not in _LOAD_IMAGE_TYPES:
        raise ValueError('test-time augmentation needs a test pipeline that starts with '
                         f'LoadImageFromFile, got {pipeline[:1]}')
    resizes = [i for i, step in enumerate(pipeline) if step.get('type') in _RESIZE_TYPES]
    if len(resizes) != 1:
        raise ValueError(f'test-time augmentation needs exactly one Resize in the test '
                         f'pipeline to scale, found {len(resizes)}: set tta_pipeline in the '
                         'config')
    if not scale_factors or any(factor <= 0 for factor in scale_factors):
        raise ValueError(f'scale factors must be positive, got {list(scale_factors)}')
    resize = pipeline[resizes[0]]
    scaled = []
    for factor in scale_factors:
        step = copy.deepcopy(resize)
        if step.get('scale') is not None:
            step['scale'] = tuple(int(round(size * factor)) for size in step['scale'])
        else:
            step['scale_factor'] = step.get('scale_factor', 1.0) * factor
        scaled.append(step)
    flips = [dict(type='RandomFlip', prob=0., direction='horizontal')]
    if flip:
        flips.append(dict(type='RandomFlip', prob=1., direction='horizontal'))
    others = [[step] for i, step in enumerate(pipeline[1:], start=1) if i != resizes[0]]
    return [pipeline[0], dict(type='TestTimeAug', transforms=[scaled, flips, *others])]


def apply_test_time_augmentation(cfg: Config,
                                 scale_factors: Sequence[float] = (1.0, ),
                                 flip: bool = True) -> Config:
    """Wrap ``cfg.model`` in its TTA model and test with the TTA pipeline, in place.

    A ``tta_pipeline`` in the config is used as it is; otherwise one is built from the test
    pipeline (:func:`build_tta_pipeline`). silc-seg's segmentors
    (``ZeroShotSegmentor``, ``CATSeg``) use :class:`ScoreAveragingTTAModel`; other models the
    config's ``tta_model`` (mmseg's default ``SegTTAModel``).

    Args:
        cfg (Config): the test config.
        scale_factors (Sequence[float]): see :func:`build_tta_pipeline`.
        flip (bool): see :func:`build_tta_pipeline`.

    Returns:
        Config: ``cfg``.
    """
    if cfg.get('tta_pipeline') is None:
        cfg.tta_pipeline = build_tta_pipeline(cfg.test_dataloader.dataset.pipeline, scale_factors,
                                              flip)
    tta_model = dict(cfg.get('tta_model', None) or dict(type='SegTTAModel'))
    if str(cfg.model.get('type')).split('.')[-1] in ('ZeroShotSegmentor', 'CATSeg') and \
            tta_model.get('type') in ('SegTTAModel', 'mmseg.SegTTAModel'):
        tta_model['type'] = 'ScoreAveragingTTAModel'
    tta_model['module'] = cfg.model
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model = tta_model
    cfg.model = tta_model
    return cfg
