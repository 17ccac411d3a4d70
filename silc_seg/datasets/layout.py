"""Check that a dataset's files are where its config says, before any model is built.

mmseg's segmentation datasets list ``data_root / data_prefix['img_path']`` for files ending in
``img_suffix``; an empty or mistyped ``data_root`` only failed after the model and checkpoint had
loaded (a long traceback), and images of another extension gave an empty dataset and
``ValueError: need at least one array to concatenate`` at the end of the evaluation.
"""
import inspect
import os
import os.path as osp
from collections import Counter
from typing import Iterable, List, Optional

from mmengine.config import Config


class DataLayoutError(FileNotFoundError):
    """A dataset's files are not where, or not what, its config says."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


def _default(cls: type, name: str) -> Optional[str]:
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        parameter = inspect.signature(init).parameters.get(name)
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
    return None


def _files(folder: str, suffix: str) -> List[str]:
    """Paths under ``folder`` (recursive, relative) ending with ``suffix``, as mmseg lists."""
    found = []
    for root, _, names in os.walk(folder, followlinks=True):
        found += [
            osp.relpath(osp.join(root, name), folder) for name in names if name.endswith(suffix)
        ]
    return found


def _extensions(folder: str) -> str:
    counts = Counter(
        osp.splitext(name)[1] or '(none)' for _, _, names in os.walk(folder) for name in names)
    return ', '.join(f'{count} {ext}' for ext, count in counts.most_common(5)) or 'no files'


def _where(root: str) -> str:
    """What the nearest existing folder above ``root`` holds (to spot a mistyped part)."""
    parent = root
    while parent and not osp.isdir(parent):
        parent = osp.dirname(parent)
    if not parent:
        return ''
    names = sorted(os.listdir(parent))[:8]
    return f' ({parent} holds: {", ".join(names) if names else "nothing"})'


def check_seg_dataset_layout(dataset: dict, name: str = 'dataset') -> Optional[int]:
    """Check one mmseg segmentation dataset config against the files.

    Args:
        dataset (dict): the dataset config (``type``, ``data_root``, ``data_prefix``,
            ``img_suffix``, ``seg_map_suffix``, ``ann_file``; missing ones take the class's
            defaults).
        name (str): the config key, for messages (``test_dataloader.dataset``).

    Returns:
        int or None: the number of images found; None for types it does not check (not an
        mmseg ``BaseSegDataset``, or a dataset wrapper).

    Raises:
        DataLayoutError: saying what was expected where and what is there.
    """
    from mmseg.datasets import BaseSegDataset
    from mmseg.registry import DATASETS
    cls = dataset.get('type')
    cls = DATASETS.get(cls) if isinstance(cls, str) else cls
    if not isinstance(cls, type) or not issubclass(cls, BaseSegDataset):
        return None
    data_root = dataset.get('data_root') or ''
    prefix = dict(dataset.get('data_prefix') or {})
    img_suffix = dataset.get('img_suffix', _default(cls, 'img_suffix'))
    seg_suffix = dataset.get('seg_map_suffix', _default(cls, 'seg_map_suffix'))
    img_dir = osp.join(data_root, prefix.get('img_path', '') or '')
    seg_dir = osp.join(data_root, prefix.get('seg_map_path', '') or '')
    spelled = (f'data_root={data_root!r} + data_prefix.img_path='
               f'{prefix.get("img_path", "")!r}')
    if not osp.isdir(img_dir):
        raise DataLayoutError(
            f'{name} ({cls.__name__}): expected the images in {img_dir} ({spelled}), which is '
            f'not a folder{_where(img_dir)}. Set {name}.data_root to the folder that holds '
            f'{prefix.get("img_path", "") or "the images"} (--cfg-options '
            f'{name}.data_root=...); docs/zero_shot_protocols.md lists each layout.')
    images = _files(img_dir, img_suffix)
    if not images:
        raise DataLayoutError(
            f'{name} ({cls.__name__}): no *{img_suffix} images in {img_dir} ({spelled}); it '
            f'holds {_extensions(img_dir)}. Images of another extension: --cfg-options '
            f'{name}.img_suffix=.EXT')
    ann_file = dataset.get('ann_file') or ''
    if ann_file and not osp.isfile(osp.join(data_root, ann_file)):
        raise DataLayoutError(f'{name} ({cls.__name__}): the split file '
                              f'{osp.join(data_root, ann_file)} (ann_file) does not exist'
                              f'{_where(osp.join(data_root, ann_file))}')
    if 'seg_map_path' not in prefix:
        return len(images)
    if not osp.isdir(seg_dir):
        raise DataLayoutError(
            f'{name} ({cls.__name__}): expected the label maps in {seg_dir} (data_root + '
            f'data_prefix.seg_map_path={prefix.get("seg_map_path", "")!r}), which is not a '
            f'folder{_where(seg_dir)}')
    stems = {label[:-len(seg_suffix)] for label in _files(seg_dir, seg_suffix)}
    unlabelled = [image for image in images if image[:-len(img_suffix)] not in stems]
    if unlabelled and not ann_file:
        raise DataLayoutError(
            f'{name} ({cls.__name__}): {len(unlabelled)} of {len(images)} images in {img_dir} '
            f'have no label map *{seg_suffix} in {seg_dir} (e.g. {unlabelled[0]}); that folder '
            f'holds {_extensions(seg_dir)}. Another extension: --cfg-options '
            f'{name}.seg_map_suffix=.EXT')
    return len(images)


def check_data_layout(cfg: Config, loaders: Iterable[str]) -> None:
    """:func:`check_seg_dataset_layout` for the datasets of the named dataloaders of ``cfg``
    (those it has; missing or ``None`` loaders are skipped)."""
    for loader in loaders:
        dataloader = cfg.get(loader, None)
        dataset = dataloader.get('dataset') if isinstance(dataloader, dict) else None
        if isinstance(dataset, dict):
            check_seg_dataset_layout(dataset, f'{loader}.dataset')
