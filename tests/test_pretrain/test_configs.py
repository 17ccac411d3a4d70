"""The pretraining configs: paper settings, and the B/16 data path feeding a (shrunk) SILC step."""
import io
import json
import tarfile

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.optim import AmpOptimWrapper
from mmengine.registry import DefaultScope
from torch.utils.data import DataLoader

import silc_seg  # noqa: F401
from silc_seg.registry import DATASETS, HOOKS, MODELS, OPTIM_WRAPPERS

B16_CONFIGS = {
    'configs/silc/pretrain_b16.py': ('ClipContrastiveLoss', True),
    'configs/silc/pretrain_clip_b16.py': ('ClipContrastiveLoss', False),
    'configs/silc/pretrain_siglip_b16.py': ('SigLipLoss', False),
    'configs/silc/pretrain_silc-siglip_b16.py': ('SigLipLoss', True),
}


@pytest.mark.parametrize('path', list(B16_CONFIGS))
def test_b16_configs_follow_the_paper(path):
    cfg = Config.fromfile(path)
    loss_type, with_distill = B16_CONFIGS[path]
    model = cfg.model
    assert model.type == 'SILC' and model.contrastive_loss.type == loss_type
    assert cfg.default_scope == 'mmseg' and 'silc_seg' in cfg.custom_imports.imports
    # bf16 mixed precision, with the non-finite loss guard (an AmpOptimWrapper subclass).
    assert cfg.optim_wrapper.type == 'NonFiniteGuardAmpOptimWrapper'
    assert issubclass(OPTIM_WRAPPERS.get(cfg.optim_wrapper.type), AmpOptimWrapper)
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    assert [s.type for s in cfg.param_scheduler] == ['LinearLR', 'CosineAnnealingLR']
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    multiview = cfg.train_dataloader.dataset.pipeline[0]
    assert multiview.num_views == [1, 1, 6]
    assert cfg.global_crop_size == 224 and cfg.local_crop_size == 96
    assert cfg.train_dataloader.dataset.type == 'WebDatasetImageText'
    hooks = {h['type']: h for h in cfg.custom_hooks}
    assert 'DataStatsHook' in hooks and 'StreamResumeHook' in hooks
    if not with_distill:
        assert model.distill_head is None and 'EMATeacherHook' not in hooks
        return
    assert model.distill_head.out_channels == model.distill_loss.out_channels == 65536
    assert model.distill_head.in_channels == cfg.embed_dim
    assert model.distill_loss.student_temp == 0.1
    assert model.distill_loss.center_momentum == 0.9
    temp = hooks['TeacherTempWarmupHook']
    assert (temp['warmup_teacher_temp'], temp['teacher_temp']) == (0.04, 0.07)
    ema = HOOKS.build(hooks['EMATeacherHook'])
    max_iters = cfg.train_cfg.max_iters
    momenta = [ema.momentum_at(i, max_iters) for i in (0, max_iters // 2, max_iters - 1)]
    assert momenta[0] == pytest.approx(0.996, abs=1e-4)
    assert momenta[0] < momenta[1] < momenta[2] < 1.0


def _shard(path, n):
    rng = np.random.default_rng(0)
    with tarfile.open(path, 'w') as tar:
        for i in range(n):
            img = rng.integers(0, 256, (140, 180, 3), dtype=np.uint8)
            for name, data in ((f'{i:03d}.jpg', cv2.imencode('.jpg', img)[1].tobytes()),
                               (f'{i:03d}.json', json.dumps(dict(caption=f'photo {i}')).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_b16_data_path_feeds_a_silc_step(tmp_path):
    """WebDataset shard -> 2x224 + 6x96 crops -> preprocessor -> SILC loss (towers shrunk)."""
    _shard(tmp_path / 'shard-0.tar', 4)
    cfg = Config.fromfile('configs/silc/pretrain_b16.py')
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = DATASETS.build(
            dict(cfg.train_dataloader.dataset, shards=str(tmp_path / 'shard-0.tar'),
                 repeat=False))
        batch = default_collate(list(DataLoader(dataset, batch_size=None)))
        model_cfg = cfg.model
        for tower in (model_cfg.image_encoder, model_cfg.text_encoder):
            tower.update(width=32, depth=1, num_heads=2)
        model = MODELS.build(model_cfg)
    model.init_weights()
    data = model.data_preprocessor(batch, training=True)
    inputs = data['inputs']
    assert inputs['global_crops'].shape == (2 * 4, 3, 224, 224)
    assert inputs['local_crops'].shape == (6 * 4, 3, 96, 96)
    assert inputs['text'].shape == (4, 77)
    losses = model.loss(inputs, data['data_samples'])
    assert torch.isfinite(losses['loss_contrastive']) and torch.isfinite(losses['loss_distill'])


@pytest.mark.parametrize('path,with_silc', [('configs/silc/pretrain_maskclip_b16.py', False),
                                            ('configs/silc/pretrain_silc-maskdistill_b16.py',
                                             True)])
def test_b16_masked_distill_configs_feed_a_step(path, with_silc, tmp_path):
    """The masked self-distillation B/16 configs (Dong et al.'s MaskCLIP objective): their
    settings, and WebDataset shard -> crops -> preprocessor -> all loss terms (towers shrunk,
    decoders and heads at their configured sizes)."""
    cfg = Config.fromfile(path)
    model_cfg = cfg.model
    assert model_cfg.type == 'MaskedSelfDistill'
    assert (model_cfg.image_mask_ratio, model_cfg.image_mask_strategy) == (0.4, 'block')
    assert model_cfg.text_mask_ratio == 0.15
    assert model_cfg.masked_distill_weight == model_cfg.mlm_weight == 1.0
    assert model_cfg.masked_head.out_channels == model_cfg.masked_distill_loss.out_channels
    hooks = {h['type']: h for h in cfg.custom_hooks}
    assert 'EMATeacherHook' in hooks
    assert (model_cfg.distill_head is not None) == with_silc
    assert ('TeacherTempWarmupHook' in hooks) == with_silc
    num_global = 2 if with_silc else 1
    assert cfg.optim_wrapper.type == 'NonFiniteGuardAmpOptimWrapper'

    _shard(tmp_path / 'shard-0.tar', 4)
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = DATASETS.build(
            dict(cfg.train_dataloader.dataset, shards=str(tmp_path / 'shard-0.tar'),
                 repeat=False))
        batch = default_collate(list(DataLoader(dataset, batch_size=None)))
        for tower in (model_cfg.image_encoder, model_cfg.text_encoder):
            tower.update(width=32, depth=1, num_heads=2)
        for decoder in (model_cfg.image_decoder, model_cfg.text_decoder):
            decoder.update(in_channels=32, embed_dims=32, num_heads=2)
        model_cfg.text_decoder.out_channels = 32
        model = MODELS.build(model_cfg)
    model.init_weights()
    data = model.data_preprocessor(batch, training=True)
    inputs = data['inputs']
    assert inputs['global_crops'].shape == (num_global * 4, 3, 224, 224)
    losses = model.loss(inputs, data['data_samples'])
    names = {'loss_contrastive', 'loss_mask_distill', 'loss_mlm'}
    if with_silc:
        names.add('loss_distill')
    assert names <= set(losses)
    assert all(torch.isfinite(losses[name]) for name in names)
