"""Tiny datasets laid out exactly like the real ones, so mmseg's dataset classes and label
conventions are exercised: images are stripes 48 px wide (vertical or horizontal), one class per
stripe, drawn in that class's colour. Stripes, not a checkerboard: bilinearly upsampled patch
logits switch class exactly half-way between two patch centres along one axis, but not at a
corner where three or four classes meet."""
import os
import os.path as osp

import numpy as np
from PIL import Image

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
        image, annotation = _draw(rng, [0, 2, 7, 12, 20, 99, 149], palette, 1, 0,
                                  vertical=index % 2 == 0)
        name = f'ADE_val_{index:08d}'
        Image.fromarray(image).save(osp.join(root, 'images/validation', name + '.jpg'),
                                    quality=95)
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
        image, annotation = _draw(rng, [0, 5, 14, 30, 46, 58], palette, 1, 0,
                                  vertical=index % 2 == 0)
        name = f'2008_{index:06d}'
        names.append(name)
        Image.fromarray(image).save(osp.join(root, 'JPEGImages', name + '.jpg'), quality=95)
        Image.fromarray(annotation).save(
            osp.join(root, 'SegmentationClassContext', name + '.png'))
    with open(osp.join(root, 'ImageSets/SegmentationContext/val.txt'), 'w') as f:
        f.write('\n'.join(names) + '\n')
    return palette
