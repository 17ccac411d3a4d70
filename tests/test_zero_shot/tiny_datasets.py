"""Tiny datasets laid out exactly like the real ones, so mmseg's dataset classes and label
conventions are exercised: images are stripes 48 px wide (vertical or horizontal), one class per
stripe, drawn in that class's colour. Stripes, not a checkerboard: bilinearly upsampled patch
logits switch class exactly half-way between two patch centres along one axis, but not at a
corner where three or four classes meet. ``run_preset`` runs tools/test.py with a preset on
such a layout, ``save_random_checkpoint`` gives it random weights."""
import os
import os.path as osp
import runpy
import sys
from unittest import mock

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

from silc_seg.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BLOCK = 48
IMAGE_SHAPE = (336, 448)  # already at the protocol's short side 336: Resize is a no-op


def class_palette(num_classes):
    """Well-separated RGB colours (6 levels per channel, >= 51 apart), one per class."""
    levels = np.linspace(0, 255, 6).round().astype(np.uint8)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing='ij'), -1).reshape(-1, 3)
    assert num_classes <= len(grid)
    return grid[:num_classes].tolist()


def _draw(rng, labels_in_use, palette, label_offset, unlabeled_value, vertical):
    """One image + its annotation; ``label_offset`` maps a class index to its PNG value; one
    stripe gets ``unlabeled_value`` (ignored by the dataset) and a grey colour."""
    image = np.zeros(IMAGE_SHAPE + (3, ), np.uint8)
    annotation = np.zeros(IMAGE_SHAPE, np.uint8)
    num_stripes = -(-IMAGE_SHAPE[1 if vertical else 0] // BLOCK)
    classes = rng.permutation(np.resize(labels_in_use, num_stripes))
    unlabeled = rng.integers(num_stripes)
    for index, label in enumerate(classes):
        span = slice(index * BLOCK, (index + 1) * BLOCK)
        stripe = (slice(None), span) if vertical else (span, slice(None))
        if index == unlabeled:
            image[stripe] = 128
            annotation[stripe] = unlabeled_value
        else:
            image[stripe] = palette[label]
            annotation[stripe] = label + label_offset
    return image, annotation


def make_ade20k(root, num_images=2, seed=0):
    """ADEChallengeData2016: images/validation/*.jpg, annotations/validation/*.png with
    0 = other (ignored with reduce_zero_label) and 1..150 = classes."""
    rng = np.random.default_rng(seed)
    palette = class_palette(150)
    for sub in ('images/validation', 'annotations/validation'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    for index in range(num_images):
        image, annotation = _draw(
            rng, [0, 2, 7, 12, 20, 99, 149], palette, 1, 0, vertical=index % 2 == 0)
        name = f'ADE_val_{index:08d}'
        Image.fromarray(image).save(osp.join(root, 'images/validation', name + '.jpg'), quality=95)
        Image.fromarray(annotation).save(osp.join(root, 'annotations/validation', name + '.png'))
    return palette


def make_pascal_context59(root, num_images=2, seed=1):
    """VOCdevkit/VOC2010: JPEGImages/*.jpg, SegmentationClassContext/*.png (0 = background,
    ignored for PC-59; 1..59 = classes), ImageSets/SegmentationContext/val.txt."""
    rng = np.random.default_rng(seed)
    palette = class_palette(59)
    for sub in ('JPEGImages', 'SegmentationClassContext', 'ImageSets/SegmentationContext'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    names = []
    for index in range(num_images):
        image, annotation = _draw(
            rng, [0, 5, 14, 30, 46, 58], palette, 1, 0, vertical=index % 2 == 0)
        name = f'2008_{index:06d}'
        names.append(name)
        Image.fromarray(image).save(osp.join(root, 'JPEGImages', name + '.jpg'), quality=95)
        Image.fromarray(annotation).save(osp.join(root, 'SegmentationClassContext', name + '.png'))
    with open(osp.join(root, 'ImageSets/SegmentationContext/val.txt'), 'w') as f:
        f.write('\n'.join(names) + '\n')
    return palette


# Every zero-shot benchmark's mmseg layout with one small random image: (image path, annotation
# path, split file or None, valid annotation values) relative to the data root.
LAYOUTS = {
    'ade150': ('images/validation/ADE_val_00000001.jpg',
               'annotations/validation/ADE_val_00000001.png', None, list(range(151))),
    'pc59': ('JPEGImages/2008_000001.jpg', 'SegmentationClassContext/2008_000001.png',
             'ImageSets/SegmentationContext/val.txt', list(range(60))),
    'pc60': ('JPEGImages/2008_000001.jpg', 'SegmentationClassContext/2008_000001.png',
             'ImageSets/SegmentationContext/val.txt', list(range(60))),
    'voc20': ('JPEGImages/2007_000001.jpg', 'SegmentationClass/2007_000001.png',
              'ImageSets/Segmentation/val.txt', list(range(21)) + [255]),
    'voc21': ('JPEGImages/2007_000001.jpg', 'SegmentationClass/2007_000001.png',
              'ImageSets/Segmentation/val.txt', list(range(21)) + [255]),
    'cityscapes': ('leftImg8bit/val/frankfurt/frankfurt_000000_000001_leftImg8bit.png',
                   'gtFine/val/frankfurt/frankfurt_000000_000001_gtFine_labelTrainIds.png', None,
                   list(range(19)) + [255]),
    'coco-stuff171':
    ('images/val2017/000000000001.jpg', 'annotations/val2017/000000000001_labelTrainIds.png', None,
     list(range(171)) + [255]),
    'coco-object':
    ('images/val2017/000000000001.jpg', 'annotations/val2017/000000000001_instanceTrainIds.png',
     None, list(range(81)) + [255]),
}


def make_benchmark_layout(name, root, shape=(40, 56), seed=0, num_images=1):
    """Random images and annotations in the layout of benchmark ``name`` (a LAYOUTS key):
    the LAYOUTS paths, then (``num_images`` > 1) the same names numbered 2, 3, ..."""
    first_image, first_annotation, split, values = LAYOUTS[name]
    rng = np.random.default_rng(seed)
    names = []
    for index in range(1, num_images + 1):
        image_path, annotation_path = (
            path.replace('000001', f'{index:06d}') for path in (first_image, first_annotation))
        for path in (image_path, annotation_path):
            os.makedirs(osp.dirname(osp.join(root, path)), exist_ok=True)
        image = rng.integers(0, 256, shape + (3, ), dtype=np.uint8)
        Image.fromarray(image).save(osp.join(root, image_path))
        annotation = rng.choice(np.array(values, np.uint8), size=shape)
        Image.fromarray(annotation).save(osp.join(root, annotation_path))
        names.append(osp.splitext(osp.basename(image_path))[0])
    if split:
        os.makedirs(osp.dirname(osp.join(root, split)), exist_ok=True)
        with open(osp.join(root, split), 'w') as f:
            f.write('\n'.join(names) + '\n')


def save_random_checkpoint(config, overrides, path, seed=0):
    """Save the seeded random weights of a config's model.

    Args:
        config (str): the config file.
        overrides (str): config text merged into it first (tiny towers, say).
        path (str | pathlib.Path): where the checkpoint (``dict(state_dict=...)``) goes.
        seed (int): the torch seed of the initialisation.

    Returns:
        str: ``path``.
    """
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(Config.fromstring(overrides, '.py').to_dict())
    torch.manual_seed(seed)
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    torch.save(dict(state_dict=model.state_dict()), str(path))
    return str(path)


def run_preset(preset, dataset, checkpoint, root, overrides=''):
    """Run ``tools/test.py`` with a preset on a generated layout of its benchmark.

    Args:
        preset (str): the preset config file.
        dataset (str): the benchmark (a ``LAYOUTS`` key); its layout is generated under
            ``root/data`` and the preset's test data root points there (no workers).
        checkpoint (str): the weights ``tools/test.py`` loads.
        root (pathlib.Path): an empty folder for the data, the config and the work dir.
        overrides (str): config text put after the preset (tiny towers, say).

    Returns:
        str: the text of the run's log.
    """
    data_root = str(root / 'data')
    make_benchmark_layout(dataset, data_root)
    config = root / (osp.splitext(osp.basename(preset))[0] + '_tiny.py')
    config.write_text(f"_base_ = ['{preset}']\n" + overrides +
                      f"\ntest_dataloader = dict(num_workers=0, dataset=dict("
                      f"data_root='{data_root}'))\n")
    work_dir = root / 'work'
    argv = ['tools/test.py', str(config), checkpoint, '--work-dir', str(work_dir)]
    with mock.patch.object(sys, 'argv', argv):
        runpy.run_path(osp.join(REPO, 'tools/test.py'), run_name='__main__')
    logs = list(work_dir.rglob('*.log'))
    assert logs, f'tools/test.py wrote no log under {work_dir}'
    return logs[0].read_text()


def dataset_class_count(cfg):
    """The number of classes of a preset's test dataset (its metainfo, else the dataset type's),
    which its class-name file must match."""
    from silc_seg.registry import DATASETS
    init_default_scope('mmseg')
    dataset_cfg = cfg.test_dataloader.dataset
    classes = (
        dataset_cfg.metainfo['classes']
        if dataset_cfg.get('metainfo') else DATASETS.get(dataset_cfg.type).METAINFO['classes'])
    return len(classes)
