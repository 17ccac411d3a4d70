"""The published vocabularies shipped as data (configs/vocabularies/): SCLIP's (also NACLIP's)
configs/cls_*.txt, ClearCLIP's cls_voc21.txt, cls_voc20.txt and cls_coco_object.txt, CAT-Seg's
datasets/pc59.json, line for line, and how they differ from ours (configs/vocabularies/silc/)."""
import os.path as osp

import pytest

from silc_seg.models.utils import load_class_names

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VOCABULARIES = osp.join(REPO, 'configs/vocabularies')
NEW_VOCABULARIES = VOCABULARIES
# File -> (classes, total synonyms, characters as published).
PUBLISHED = {
    'sclip/cls_ade20k.txt': (150, 150, 1103),
    'sclip/cls_city_scapes.txt': (19, 19, 138),
    'sclip/cls_coco_object.txt': (81, 113, 911),
    'sclip/cls_coco_stuff.txt': (171, 171, 1374),
    'sclip/cls_context59.txt': (59, 59, 378),
    'sclip/cls_context60.txt': (60, 60, 390),
    'sclip/cls_voc20.txt': (20, 30, 283),
    'sclip/cls_voc21.txt': (21, 56, 463),
    'clearclip/cls_voc21.txt': (21, 21, 139),
}
# Under configs/vocabularies/ (the new layout).
PUBLISHED_NEW = {
    'clearclip/cls_voc20.txt': (20, 20, 128),
    'clearclip/cls_coco_object.txt': (81, 81, 631),
    'catseg/pc59.txt': (59, 59, 385),
}
# SCLIP's background line on VOC-21 and COCO-Object: 26 kinds of background stuff.
STUFF_BACKGROUND = [
    'sky', 'wall', 'tree', 'wood', 'grass', 'road', 'sea', 'river', 'mountain', 'sands', 'desk',
    'bed', 'building', 'cloud', 'lamp', 'door', 'window', 'wardrobe', 'ceiling', 'shelf',
    'curtain', 'stair', 'floor', 'hill', 'rail', 'fence'
]


@pytest.mark.parametrize('name', sorted(PUBLISHED) + sorted(PUBLISHED_NEW))
def test_line_counts_and_sizes(name):
    root = NEW_VOCABULARIES if name in PUBLISHED_NEW else VOCABULARIES
    path = osp.join(root, name)
    classes, synonyms, chars = {**PUBLISHED, **PUBLISHED_NEW}[name]
    with open(path, encoding='utf-8') as f:
        text = f.read()
    assert len(text) == chars and len(text.splitlines()) == classes
    vocabulary = load_class_names(path)
    assert len(vocabulary) == classes and sum(map(len, vocabulary)) == synonyms


def test_background_lines():
    voc21 = load_class_names(osp.join(VOCABULARIES, 'sclip/cls_voc21.txt'))
    coco_object = load_class_names(osp.join(VOCABULARIES, 'sclip/cls_coco_object.txt'))
    context60 = load_class_names(osp.join(VOCABULARIES, 'sclip/cls_context60.txt'))
    clearclip_voc21 = load_class_names(osp.join(VOCABULARIES, 'clearclip/cls_voc21.txt'))
    assert voc21[0] == STUFF_BACKGROUND and coco_object[0] == STUFF_BACKGROUND
    assert context60[0] == ['background'] and clearclip_voc21[0] == ['background']
    # The person lines (VOC: 7 synonyms; COCO-Object adds 'body').
    assert voc21[15][:2] == ['person', 'person in shirt'] and len(voc21[15]) == 7
    assert coco_object[1][-1] == 'body' and len(coco_object[1]) == 8
    # VOC-20 is VOC-21 without its background line.
    assert load_class_names(osp.join(VOCABULARIES, 'sclip/cls_voc20.txt')) == voc21[1:]
    assert load_class_names(osp.join(VOCABULARIES, 'sclip/cls_context59.txt')) == context60[1:]


@pytest.mark.parametrize('ours,published,differing', [
    ('voc21.txt', 'sclip/cls_voc21.txt', 9),
    ('voc20.txt', 'sclip/cls_voc20.txt', 8),
    ('pc60.txt', 'sclip/cls_context60.txt', 6),
    ('coco-object.txt', 'sclip/cls_coco_object.txt', 2),
])
def test_our_vocabularies_stay_available_and_differ(ours, published, differing):
    """Our own vocabularies (used by configs/silc/zs_*.py) are not the published ones: the number
    of lines that differ."""
    ours = load_class_names(osp.join(VOCABULARIES, 'silc', ours))
    published = load_class_names(osp.join(VOCABULARIES, published))
    assert len(ours) == len(published)
    assert sum(a != b for a, b in zip(ours, published)) == differing


def test_clearclip_files_name_background_and_person_alone():
    """ClearCLIP's own VOC-20 / COCO-Object files: SCLIP's lines, but single names for the
    background, person (and VOC's tvmonitor) lines."""
    sclip_voc20 = load_class_names(osp.join(VOCABULARIES, 'sclip/cls_voc20.txt'))
    voc20 = load_class_names(osp.join(NEW_VOCABULARIES, 'clearclip/cls_voc20.txt'))
    coco_object = load_class_names(osp.join(NEW_VOCABULARIES, 'clearclip/cls_coco_object.txt'))
    sclip_coco_object = load_class_names(osp.join(VOCABULARIES, 'sclip/cls_coco_object.txt'))
    assert voc20[14] == ['person'] and voc20[19] == ['tvmonitor']
    assert [i for i, (a, b) in enumerate(zip(voc20, sclip_voc20)) if a != b] == [14, 19]
    assert coco_object[:2] == [['background'], ['person']]
    assert coco_object[2:] == sclip_coco_object[2:]


def test_catseg_pc59_names_dining_table_as_catseg_does():
    """CAT-Seg's pc59.json: mmseg's Pascal-Context-59 classes in the same order, except
    'diningtable' where mmseg has 'table'."""
    from mmseg.datasets import PascalContextDataset59
    names = [line[0] for line in load_class_names(osp.join(NEW_VOCABULARIES, 'catseg/pc59.txt'))]
    mmseg_names = list(PascalContextDataset59.METAINFO['classes'])
    assert [(a, b) for a, b in zip(names, mmseg_names) if a != b] == [('diningtable', 'table')]
