"""CASS presets (configs/zero_shot/cass/): each carries MICV-yonsei/CASS's protocol
(``configs/base_config.py``, ``configs/cfg_*.py``, ``cass_segmentor.py``, ``clip/model.py``
@228ecdd; see docs/zero_shot_protocols.md), and two run tools/test.py end to end on generated
copies of their dataset layouts with tiny towers (a 2-block CLIP tower and a 2-block DINO ViT-B/8
layout)."""
import os.path as osp
import runpy
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from silc_seg.models.utils import load_class_names
from silc_seg.registry import MODELS
from .test_proxyclip_presets import REPO, TINY_TOWERS
from .tiny_datasets import LAYOUTS, dataset_class_count, make_benchmark_layout

# CASS configs/cfg_*.py: name_path, h_threshold, mean_vector_weight, global_semantics_weight,
# prob_thd, Resize short side; cass_segmentor.py / clip/model.py: the dataset-name switches.
PROTOCOL = {
    'ade150': ('cls_ade20k.txt', 0.06, 0.05, 0.3, 0.0, 336),
    'pc59': ('cls_context59.txt', 0.09, 0.04, 0.25, 0.0, 336),
    'pc60': ('cls_context60.txt', 0.09, 0.04, 0.25, 0.1, 336),
    'voc20': ('cls_voc20.txt', 0.10, 0.02, 0.4, 0.0, 336),
    'voc21': ('cls_voc21.txt', 0.10, 0.03, 0.1, 0.1, 336),
    'cityscapes': ('cls_city_scapes.txt', 0.14, 0.03, 0.1, 0.0, 560),
    'coco-stuff171': ('cls_coco_stuff.txt', 0.02, 0.02, 0.2, 0.0, 336),
    'coco-object': ('cls_coco_object.txt', 0.10, 0.01, 0.25, 0.1, 336),
}


def preset_path(dataset):
    return osp.join(REPO, 'configs/zero_shot/cass', f'cass_vit-b16_{dataset}.py')


@pytest.mark.parametrize('dataset', sorted(LAYOUTS))
def test_preset_protocol_and_vocabulary(dataset):
    cfg = Config.fromfile(preset_path(dataset))
    model, head = cfg.model, cfg.model.decode_head
    vocabulary, threshold, alpha, weight, prob_thd, short_side = PROTOCOL[dataset]
    resize = [t for t in cfg.test_dataloader.dataset.pipeline if t['type'] == 'Resize'][0]
    assert tuple(resize['scale']) == (2048, short_side) and resize['keep_ratio']
    assert model.type == 'CASSSegmentor' and model.dense_variant == 'plain'
    assert model.pamr is None and model.templates == 'imagenet80' and model.precision == 'fp16'
    assert model.image_encoder.act == 'quick_gelu'
    assert model.image_encoder.pos_embed_resize == 'scale_factor'
    test_cfg = model.test_cfg
    if dataset == 'voc21':
        assert test_cfg['mode'] == 'whole'
    else:
        assert test_cfg['mode'] == 'slide' and tuple(test_cfg['crop_size']) == (224, 224)
        assert tuple(test_cfg['stride']) == (112, 112)
    assert test_cfg['partial_patches'] == 'drop'
    dense = model.dense_forward
    assert dense.type == 'CASSDense' and dense.vfm == dict(
        type='DINOViT',
        arch='vit_base_patch8_224.dino',
        pos_embed_offset=0.1,
        pos_embed_antialias=False)
    assert (dense.num_eigenvalues, dense.low_rank, dense.distill_weight) == (20, 10, 10.0)
    assert dense.low_rank_solver == 'randomized' and dense.gaussian_std == 5.0
    assert dense.vfm_key_dtype == 'fp16' and dense.square_vfm_input
    assert dense.rescale_singular_values == (dataset not in ('voc20', 'cityscapes'))
    assert list(dense.inverse_mean) == [0.485, 0.456, 0.406]
    assert list(dense.inverse_std) == [0.229, 0.224, 0.255]
    assert list(dense.vfm_mean) == [0.485, 0.456, 0.406]
    assert list(dense.vfm_std) == [0.229, 0.224, 0.225]
    adjust = model.text_adjustment
    assert adjust.type == 'CASSTextAdjustment' and adjust.top_k == 2
    assert (adjust.cluster_threshold, adjust.mean_vector_weight,
            adjust.global_weight) == (threshold, alpha, weight)
    assert model.global_view == ('window' if dataset == 'cityscapes' else 'image')
    assert head.logit_scale == 40.0 and head.get('prob_thd', 0.0) == prob_thd
    assert head.get('background_index') == (0 if prob_thd else None)
    assert head.get('area_thd') is None
    assert model.class_names.endswith(f'vocabularies/sclip/{vocabulary}')
    assert len(load_class_names(model.class_names)) == dataset_class_count(cfg)


@pytest.fixture(scope='module')
def tiny_checkpoint(tmp_path_factory):
    cfg = Config.fromfile(preset_path('ade150'))
    cfg.merge_from_dict(Config.fromstring(TINY_TOWERS, '.py').to_dict())
    torch.manual_seed(0)
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    path = str(tmp_path_factory.mktemp('tiny') / 'tiny_cass.pth')
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize('dataset', ['voc21', 'cityscapes'])
def test_preset_runs_tools_test(tmp_path, tiny_checkpoint, dataset, monkeypatch):
    data_root = str(tmp_path / 'data')
    make_benchmark_layout(dataset, data_root)
    config = tmp_path / f'cass_{dataset}_tiny.py'
    config.write_text(f"_base_ = ['{preset_path(dataset)}']\n" + TINY_TOWERS +
                      f"test_dataloader = dict(num_workers=0, dataset=dict("
                      f"data_root='{data_root}'))\n")
    work_dir = tmp_path / 'work'
    monkeypatch.setattr(
        sys, 'argv', ['tools/test.py',
                      str(config), tiny_checkpoint, '--work-dir',
                      str(work_dir)])
    runpy.run_path(osp.join(REPO, 'tools/test.py'), run_name='__main__')
    logs = list(work_dir.rglob('*.log'))
    assert logs and 'mIoU:' in logs[0].read_text()
