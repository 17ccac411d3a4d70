import filecmp
import json
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from silc_seg.datasets import DemoSegDataset, ImageTextManifestDataset
from silc_seg.utils import demo_data
from silc_seg.utils.demo_data import CLASS_NAMES, make_demo_data


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('demo'))
    assert make_demo_data(root, num_train=40, num_val=12, image_size=48, seed=1)
    return root


def test_concepts_and_config_agree():
    assert len(CLASS_NAMES) >= 12 and len(set(CLASS_NAMES)) == len(CLASS_NAMES)
    colors = {c for c, _ in demo_data.CONCEPTS}
    textures = {t for _, t in demo_data.CONCEPTS}
    # Every colour comes in every texture: colour alone never names a concept.
    assert len(demo_data.CONCEPTS) == len(colors) * len(textures)
    cfg = Config.fromfile('configs/_base_/datasets/demo_pretrain.py')
    assert tuple(cfg.demo_classes) == CLASS_NAMES
    assert DemoSegDataset.METAINFO['classes'] == CLASS_NAMES
    assert len(DemoSegDataset.METAINFO['palette']) == len(CLASS_NAMES)


def test_textures_differ_locally_not_in_mean_colour():
    rng = np.random.default_rng(0)
    patches = {
        t: demo_data.render_texture(t, demo_data.COLORS['red'], 48, rng).astype(float)
        for t in ('stripes', 'checks')
    }
    means = {t: p.reshape(-1, 3).mean(0) for t, p in patches.items()}
    # Same colour, half coverage each: mean colours within a few levels ...
    assert np.abs(means['stripes'] - means['checks']).max() < 25

    # ... while the local structure (pixel-to-pixel variation) tells textures apart.

    def local_variation(patch):
        gray = patch.mean(-1)
        return np.abs(np.diff(gray, axis=0)).mean() + np.abs(np.diff(gray, axis=1)).mean()

    plain = demo_data.render_texture('plain', demo_data.COLORS['red'], 48, rng).astype(float)
    assert local_variation(patches['stripes']) > 3 * local_variation(plain)
    assert local_variation(patches['checks']) > 3 * local_variation(plain)


@pytest.mark.slow
def test_generator_is_deterministic_and_idempotent(demo_root, tmp_path):
    other = str(tmp_path / 'again')
    make_demo_data(other, num_train=40, num_val=12, image_size=48, seed=1)
    for rel in ('annotations/pretrain_train.jsonl', 'annotations/pretrain_val.jsonl',
                'images/train/train_00007.png', 'seg/ann_dir/val/val_00003.png',
                'class_names.txt'):
        assert filecmp.cmp(osp.join(demo_root, rel), osp.join(other, rel), shallow=False)
    assert not make_demo_data(other, num_train=40, num_val=12, image_size=48, seed=1)
    assert make_demo_data(other, num_train=40, num_val=12, image_size=48, seed=2)
    assert not filecmp.cmp(
        osp.join(demo_root, 'images/train/train_00007.png'),
        osp.join(other, 'images/train/train_00007.png'),
        shallow=False)


def test_manifest_captions_and_seg_maps_agree(demo_root):
    with open(osp.join(demo_root, 'annotations', 'pretrain_val.jsonl')) as f:
        records = [json.loads(line) for line in f]
    assert len(records) == 12
    for record in records:
        name = osp.basename(record['image'])
        ann = np.array(Image.open(osp.join(demo_root, 'seg', 'ann_dir', 'val', name)))
        assert ann.shape == (48, 48)
        assert sorted(np.unique(ann).tolist()) == record['labels']
        assert 2 <= len(record['labels']) <= 4
        captions = [record['caption']] + record['extra_captions']
        assert len(set(captions)) == 3
        for caption in captions:
            for label in record['labels']:
                color, texture = demo_data.CONCEPTS[label]
                assert color in caption
                assert any(p.format(c=color) in caption for p in demo_data._PHRASES[texture])
    with open(osp.join(demo_root, 'class_names.txt')) as f:
        assert tuple(f.read().split('\n')[:-1]) == CLASS_NAMES


def test_datasets_load_the_demo_data(demo_root):
    seg = DemoSegDataset(
        data_root=osp.join(demo_root, 'seg'),
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')
        ])
    assert len(seg) == 12
    sample = seg[0]['data_samples']
    assert sample.gt_sem_seg.data.max() < len(CLASS_NAMES)
    pretrain = ImageTextManifestDataset(
        data_root=demo_root,
        ann_file='annotations/pretrain_train.jsonl',
        pipeline=[dict(type='PackSILCInputs')])
    assert len(pretrain) == 40
    assert pretrain[0]['inputs']['image'].shape == (3, 48, 48)


@pytest.mark.slow
def test_make_demo_data_cli(tmp_path):
    import subprocess
    import sys
    out = str(tmp_path / 'cli')
    cmd = [
        sys.executable, 'tools/misc/make_demo_data.py', '--out', out, '--num-train', '8',
        '--num-val', '4'
    ]
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    assert 'written' in first.stdout
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    assert 'already up to date' in second.stdout
    assert len(os.listdir(osp.join(out, 'images', 'train'))) == 8
