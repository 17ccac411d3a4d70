"""ProxyCLIP presets (configs/zero_shot/proxyclip/): each carries mc-lan/ProxyCLIP's protocol
(``configs/base_config.py``, ``configs/cfg_*.py``, ``proxyclip_segmentor.py`` @05c3c18; see
docs/zero_shot_protocols.md), and two run tools/test.py end to end on generated copies of their
dataset layouts with tiny towers (a 2-block CLIP tower and a 2-block DINO ViT-B/8 layout)."""
import os.path as osp

import pytest
from mmengine.config import Config

from silc_seg.models.utils import load_class_names
from .tiny_datasets import LAYOUTS, REPO, dataset_class_count, run_preset, save_random_checkpoint

TINY_TOWERS = """
model = dict(
    image_encoder=dict(width=32, depth=2, num_heads=2, output_dim=16),
    text_encoder=dict(width=32, depth=1, num_heads=2, output_dim=16),
    dense_forward=dict(vfm=dict(timm_kwargs=dict(embed_dim=32, depth=2, num_heads=2))),
    templates='single')
"""
# ProxyCLIP configs/cfg_*.py: name_path (ours: the same names, ', ' for '; '), short side,
# prob_thd; slide_crop / slide_stride where they differ from base 336 / 112.
PROTOCOL = {
    'ade150': ('sclip/cls_ade20k.txt', 448, 0.0),
    'pc59': ('sclip/cls_context59.txt', 336, 0.0),
    'pc60': ('sclip/cls_context60.txt', 336, 0.15),
    'voc20': ('clearclip/cls_voc20.txt', 336, 0.0),
    'voc21': ('proxyclip/cls_voc21.txt', 336, 0.2),
    'cityscapes': ('sclip/cls_city_scapes.txt', 448, 0.0),
    'coco-stuff171': ('sclip/cls_coco_stuff.txt', 336, 0.0),
    'coco-object': ('proxyclip/cls_coco_object.txt', 336, 0.25),
}


def preset_path(dataset):
    return osp.join(REPO, 'configs/zero_shot/proxyclip', f'proxyclip_vit-b16_{dataset}.py')


@pytest.mark.slow
@pytest.mark.parametrize('dataset', sorted(LAYOUTS))
def test_preset_protocol_and_vocabulary(dataset):
    cfg = Config.fromfile(preset_path(dataset))
    model, head = cfg.model, cfg.model.decode_head
    vocabulary, short_side, prob_thd = PROTOCOL[dataset]
    resize = [t for t in cfg.test_dataloader.dataset.pipeline if t['type'] == 'Resize'][0]
    assert tuple(resize['scale']) == (2048, short_side) and resize['keep_ratio']
    assert model.dense_variant == 'plain' and model.pamr is None
    assert model.templates == 'imagenet80' and model.precision == 'fp16'
    assert model.image_encoder.act == 'quick_gelu'
    assert model.image_encoder.pos_embed_resize == 'scale_factor'
    test_cfg = model.test_cfg
    crop, stride = (224, 112) if dataset == 'cityscapes' else (336, 112)
    assert test_cfg['mode'] == 'slide' and tuple(test_cfg['crop_size']) == (crop, crop)
    assert tuple(test_cfg['stride']) == (stride, stride)
    assert test_cfg['partial_patches'] == 'pad' and test_cfg['pad_multiple'] == 56
    dense = model.dense_forward
    assert dense.type == 'ProxyCLIPDense' and (dense.beta, dense.gamma) == (1.2, 3.0)
    assert dense.vfm == dict(
        type='DINOViT',
        arch='vit_base_patch8_224.dino',
        pos_embed_offset=0.1,
        pos_embed_antialias=False)
    assert list(dense.clip_mean) == list(model.data_preprocessor.mean)
    assert list(dense.clip_std) == list(model.data_preprocessor.std)
    assert list(dense.vfm_mean) == [123.675, 116.28, 103.53]
    assert list(dense.vfm_std) == [58.395, 57.12, 57.375]
    assert head.logit_scale == 40.0 and head.get('prob_thd', 0.0) == prob_thd
    assert head.get('background_index') == (0 if prob_thd else None)
    assert head.get('area_thd') is None
    assert model.class_names.endswith(f'vocabularies/{vocabulary}')
    assert len(load_class_names(model.class_names)) == dataset_class_count(cfg)


def test_proxyclip_vocabularies_keep_the_reference_synonyms():
    """ProxyCLIP's VOC-21 / COCO-Object files: background as a list of stuff names (26 / 17,
    without the word 'background'), one name per object class."""
    root = osp.join(REPO, 'configs/vocabularies/proxyclip')
    voc21 = load_class_names(osp.join(root, 'cls_voc21.txt'))
    coco = load_class_names(osp.join(root, 'cls_coco_object.txt'))
    assert (len(voc21), len(voc21[0]), len(coco), len(coco[0])) == (21, 26, 81, 17)
    assert 'background' not in voc21[0] and 'fence' in voc21[0] and 'fence' not in coco[0]
    assert all(len(names) == 1 for names in voc21[1:] + coco[1:])
    assert voc21[15] == ['person'] and coco[1] == ['person']


@pytest.fixture(scope='module')
def tiny_checkpoint(tmp_path_factory):
    return save_random_checkpoint(
        preset_path('ade150'), TINY_TOWERS,
        tmp_path_factory.mktemp('tiny') / 'tiny_proxyclip.pth')


@pytest.mark.slow
@pytest.mark.parametrize('dataset', ['voc21', 'cityscapes'])
def test_preset_runs_tools_test(tmp_path, tiny_checkpoint, dataset):
    log = run_preset(preset_path(dataset), dataset, tiny_checkpoint, tmp_path, TINY_TOWERS)
    assert 'mIoU:' in log
