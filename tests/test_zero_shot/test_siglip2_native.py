"""Zero-shot segmentation at the native aspect ratio (test_cfg.mode='native') on a small NaFlex
tower, and the SigLIP 2 presets (dense blocks, NaFlex native / sliding, CAT-Seg)."""
import glob
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

from silc_seg.models.backbones.naflex_vit import naflex_grid
from silc_seg.registry import MODELS
from silc_seg.utils import get_config_path
from . import toy_towers  # noqa: F401  (registers the toy towers)

PATCH, BUDGET = 8, 48


def build_segmentor(test_cfg, dense_variant='plain'):
    torch.manual_seed(0)
    return MODELS.build(
        dict(
            type='ZeroShotSegmentor',
            image_encoder=dict(
                type='NaFlexVisionTransformer',
                arch=dict(width=32, depth=2, num_heads=2, patch_size=PATCH),
                img_size=64,
                output_dim=16,
                pool_type='map',
                class_token=False,
                patch_bias=True,
                act='gelu_tanh',
                norm_eps=1e-6),
            text_encoder=dict(type='silc_test.ToyTextEncoder'),
            tokenizer=dict(type='silc_test.ToyWordTokenizer'),
            decode_head=dict(type='ZeroShotHead', logit_scale=20.0),
            class_names=['cat', 'grass, lawn', 'sky'],
            templates='short',
            dense_variant=dense_variant,
            test_cfg=test_cfg)).eval()


@pytest.mark.parametrize('dense_variant', ['plain', 'naclip'])
@torch.no_grad()
def test_native_mode_is_one_whole_image_forward_at_its_grid(dense_variant):
    model = build_segmentor(dict(mode='native', max_num_patches=BUDGET), dense_variant)
    torch.manual_seed(1)
    image = torch.randn(3, 50, 90)
    logits = model.inference(image[None], [dict(img_shape=(50, 90))])[0]
    # Written out: the grid within the budget at the image's aspect ratio (5 x 9 = 45 of 48),
    # an antialiased bilinear resize to it, one dense forward, cosine logits, bilinear upsampling.
    grid = naflex_grid(50, 90, PATCH, BUDGET)
    assert grid == (5, 9)
    resized = F.interpolate(
        image[None],
        size=(grid[0] * PATCH, grid[1] * PATCH),
        mode='bilinear',
        antialias=True,
        align_corners=False)
    dense = model.image_encoder.encode_dense(resized, variant=dense_variant)['dense']
    text, _ = model.text_embeddings()
    cosine = torch.einsum('bchw,qc->bqhw', F.normalize(dense, dim=1), text)
    expected = F.interpolate(cosine, size=(50, 90), mode='bilinear', align_corners=False)[0]
    torch.testing.assert_close(logits, expected)
    # Not what sliding square windows give.
    slide = build_segmentor(
        dict(mode='slide', crop_size=(32, 32), stride=(16, 16)),
        dense_variant).inference(image[None], [dict(img_shape=(50, 90))])[0]
    assert (slide - logits).abs().max() > 1e-3


def test_native_test_cfg_errors():
    with pytest.raises(ValueError, match='needs test_cfg.max_num_patches'):
        build_segmentor(dict(mode='native'))
    with pytest.raises(ValueError, match=r"takes only \['mode', 'max_num_patches'\]"):
        build_segmentor(dict(mode='native', max_num_patches=64, crop_size=(32, 32)))


PRESETS = sorted(
    glob.glob(
        osp.join(osp.dirname(get_config_path('configs/silc/zs_common.py')), '*_siglip2_*.py')))
# Dense-prediction presets only (the SigLIP 2 pretraining demo has CLIP's tokenizer).
PRESETS = [path for path in PRESETS if not osp.basename(path).startswith('demo_')]


@pytest.mark.slow
@pytest.mark.parametrize('path', PRESETS, ids=osp.basename)
def test_siglip2_presets_build(path):
    if path.endswith('_common.py'):
        pytest.skip('a base of the presets')
    cfg = Config.fromfile(path)
    name = osp.basename(path)
    for block in ('maskclip', 'sclip', 'clearclip', 'naclip'):
        if f'_{block}_' in name:
            assert cfg.model.dense_variant == block
    if 'naflex' in name:
        assert cfg.model.image_encoder.type == 'NaFlexVisionTransformer'
        expected = 'slide' if '_slide_' in name else 'native'
        assert cfg.model.test_cfg.mode == expected
    assert cfg.model.tokenizer.type == 'GemmaTokenizer'
    assert cfg.model.text_encoder.get('vocab_size', 256000) == 256000
    if name.startswith('catseg'):
        # No class token, so no CAT-Seg dense block; the 384 px towers fit its crops.
        assert cfg.model.dense_variant == 'plain' and cfg.model.image_encoder.img_size == 384
        assert cfg.model.image_encoder.pool_type == 'map'
        return  # CATSeg computes at construction: not built on meta tensors
    init_default_scope('mmseg')
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert model.image_encoder.cls_token is None  # MAP towers: no class token
