"""The zero-shot dataset configs on tiny copies of the real layouts: class lists and label
conventions (ignored / background / label-map) as mmseg's dataset classes apply them."""
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

from silc_seg.registry import DATASETS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PC_SPLIT = 'ImageSets/SegmentationContext/val.txt'
# PNG value -> what the metric must see, per config.
CASES = {
    # VOC-20: background (0) ignored, classes 1..20 shifted to 0..19, 255 stays ignored.
    'zs_voc20.py':
    ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation/val.txt', '.png', 20, {
        0: 255,
        1: 0,
        20: 19,
        255: 255
    }),
    'zs_voc21.py':
    ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation/val.txt', '.png', 21, {
        0: 0,
        1: 1,
        20: 20,
        255: 255
    }),
    'zs_pc60.py': ('JPEGImages', 'SegmentationClassContext', PC_SPLIT, '.png', 60, {
        0: 0,
        59: 59
    }),
    'zs_pc59.py': ('JPEGImages', 'SegmentationClassContext', PC_SPLIT, '.png', 59, {
        0: 255,
        1: 0,
        59: 58
    }),
    'zs_coco-object.py':
    ('images/val2017', 'annotations/val2017', None, '_instanceTrainIds.png', 81, {
        0: 0,
        80: 80,
        255: 255
    }),
}


@pytest.mark.slow
@pytest.mark.parametrize('config_name', sorted(CASES))
def test_dataset_config_label_conventions(tmp_path, config_name):
    img_dir, seg_dir, split, seg_suffix, num_classes, expected = CASES[config_name]
    os.makedirs(tmp_path / img_dir)
    os.makedirs(tmp_path / seg_dir)
    values = np.array(sorted(expected), np.uint8)
    annotation = np.resize(values, (8, 12))
    Image.fromarray(np.zeros((8, 12, 3), np.uint8)).save(tmp_path / img_dir / 'a.jpg')
    Image.fromarray(annotation).save(tmp_path / seg_dir / f'a{seg_suffix}')
    if split:
        os.makedirs(osp.dirname(tmp_path / split), exist_ok=True)
        (tmp_path / split).write_text('a\n')

    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/datasets', config_name))
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.data_root = str(tmp_path)
    dataset = DATASETS.build(dataset_cfg)
    assert len(dataset.metainfo['classes']) == num_classes
    sample = dataset[0]
    labels = sample['data_samples'].gt_sem_seg.data[0].numpy()
    for value, label in expected.items():
        assert (labels[annotation == value] == label).all(), (value, label)
