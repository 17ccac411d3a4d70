"""The method presets (configs/zero_shot/<method>/<method>_vit-b16_<dataset>.py): each reproduces
its paper's protocol (docs/zero_shot_protocols.md) and runs tools/test.py end to end on a
generated copy of its dataset's layout, with tiny towers of the same kind (quick-GELU CLIP ViT
with the references' position-embedding resize) in place of ViT-B/16."""
import os.path as osp

import pytest
from mmengine.config import Config

from silc_seg.models.utils import load_class_names
from .tiny_datasets import LAYOUTS, REPO, dataset_class_count, run_preset, save_random_checkpoint

METHODS = ('maskclip', 'sclip', 'clearclip', 'naclip')
PRESETS = [(method, dataset) for method in METHODS for dataset in LAYOUTS]
# Tiny towers: the preset's tower settings with ViT-B/16's size overridden.
TINY_TOWERS = """
model = dict(
    image_encoder=dict(width=32, depth=2, num_heads=2, output_dim=16),
    text_encoder=dict(width=32, depth=1, num_heads=2, output_dim=16),
    templates='single')
"""
# The protocol of every preset, as read from the references (see the docs page for the files):
# (dense variant, short side, mode, window, stride, logit scale, prob_thd, area_thd, PAMR).
BACKGROUND = {'voc21', 'pc60', 'coco-object'}
SHORT_SIDE = {'cityscapes': 560, 'coco-stuff171': 448}


def expected_protocol(method, dataset):
    short_side = SHORT_SIDE.get(dataset, 336)
    mode, window, stride = 'slide', (224, 224), (112, 112)
    prob_thd, area_thd, pamr = 0.0, None, None
    if method in ('maskclip', 'sclip'):
        scale = {'voc21': 65.0, 'pc60': 50.0, 'coco-object': 50.0}.get(dataset, 40.0)
        prob_thd = 0.1 if dataset in BACKGROUND else 0.0
        area_thd = 0.1 if dataset == 'voc21' else None
    elif method == 'naclip':
        scale, pamr = 40.0, dict(num_iter=10, dilations=(8, 16))
        prob_thd = 0.1 if dataset in BACKGROUND else 0.0
        mode = 'whole' if dataset in ('voc20', 'voc21') else 'slide'
        short_side = 336 if dataset == 'coco-stuff171' else short_side
    else:
        scale, short_side = 50.0, 448
        window, stride = ((224, 224), (224, 224)) if dataset == 'cityscapes' else ((448, 448),
                                                                                   (224, 224))
        prob_thd = {'voc21': 0.5, 'pc60': 0.15, 'coco-object': 0.4}.get(dataset, 0.0)
    return method, short_side, mode, window, stride, scale, prob_thd, area_thd, pamr


def preset_path(method, dataset):
    return osp.join(REPO, 'configs/zero_shot', method, f'{method}_vit-b16_{dataset}.py')


@pytest.mark.slow
@pytest.mark.parametrize('method,dataset', PRESETS)
def test_preset_protocol_and_vocabulary(method, dataset):
    cfg = Config.fromfile(preset_path(method, dataset))
    model = cfg.model
    resize = [t for t in cfg.test_dataloader.dataset.pipeline if t['type'] == 'Resize'][0]
    test_cfg = model.test_cfg
    window = test_cfg.get('crop_size') if test_cfg['mode'] == 'slide' else None
    stride = test_cfg.get('stride') if test_cfg['mode'] == 'slide' else None
    method_, short_side, mode, exp_window, exp_stride, scale, prob_thd, area_thd, pamr = (
        expected_protocol(method, dataset))
    assert (model.dense_variant, resize['scale'][1], test_cfg['mode']) == (method_, short_side,
                                                                           mode)
    if mode == 'slide':
        assert (tuple(window), tuple(stride)) == (exp_window, exp_stride)
    head = model.decode_head
    assert (head.logit_scale, head.get('prob_thd',
                                       0.0), head.get('area_thd')) == (scale, prob_thd, area_thd)
    assert model.get('pamr') == pamr
    assert head.get('background_index') == (0 if dataset in BACKGROUND else None)
    # Common to all four references.
    assert model.templates == 'imagenet80' and model.precision == 'fp16'
    assert model.image_encoder.act == 'quick_gelu' and model.text_encoder.act == 'quick_gelu'
    assert model.image_encoder.pos_embed_resize == 'scale_factor'
    assert test_cfg['partial_patches'] == ('pad' if method == 'clearclip' else 'drop')
    # The published vocabulary, one line per class of the dataset, in the dataset's order.
    vocabulary = load_class_names(model.class_names)
    # ClearCLIP ships its own VOC-21, VOC-20 and COCO-Object files; the others are SCLIP's.
    expected_file = {
        ('clearclip', 'voc21'): 'clearclip/cls_voc21.txt',
        ('clearclip', 'voc20'): 'vocabularies/clearclip/cls_voc20.txt',
        ('clearclip', 'coco-object'): 'vocabularies/clearclip/cls_coco_object.txt'
    }.get((method, dataset), 'sclip/')
    assert expected_file in model.class_names
    assert len(vocabulary) == dataset_class_count(cfg)


@pytest.fixture(scope='module')
def tiny_checkpoint(tmp_path_factory):
    """Random tiny towers shared by every preset (they differ in settings, not in weights)."""
    return save_random_checkpoint(
        preset_path('sclip', 'ade150'), TINY_TOWERS,
        tmp_path_factory.mktemp('tiny') / 'tiny_clip.pth')


@pytest.mark.slow
@pytest.mark.parametrize('method,dataset', PRESETS)
def test_preset_runs_tools_test(tmp_path, tiny_checkpoint, method, dataset):
    log = run_preset(preset_path(method, dataset), dataset, tiny_checkpoint, tmp_path, TINY_TOWERS)
    assert 'mIoU:' in log
