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
from silc_seg.models.pretrainers import TeacherSchedule
from silc_seg.registry import DATASETS, MODELS, OPTIM_WRAPPERS

B16_CONFIGS = {
    'configs/silc/pretrain_b16.py': ('ClipContrastiveLoss', True),
    'configs/silc/pretrain_clip_b16.py': ('ClipContrastiveLoss', False),
    'configs/silc/pretrain_siglip_b16.py': ('SigLipLoss', False),
    'configs/silc/pretrain_silc-siglip_b16.py': ('SigLipLoss', True),
}


@pytest.mark.slow
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
    # 2 global, 6 local crops, and 2 contrastive views without colour changes or flips.
    assert multiview.num_views == [1, 1, 6, 2]
    contrastive_view = multiview.transforms[3]
    assert len(contrastive_view) == 1 and 'RandomResizedCrop' in contrastive_view[0]['type']
    assert cfg.train_dataloader.dataset.pipeline[-1].num_contrastive_crops == 2
    assert cfg.global_crop_size == 224 and cfg.local_crop_size == 96
    assert cfg.train_dataloader.dataset.type == 'WebDatasetImageText'
    hooks = {h['type']: h for h in cfg.custom_hooks}
    assert 'DataStatsHook' in hooks and 'StreamResumeHook' in hooks
    if not with_distill:
        assert model.get('distill_head') is None and model.get('teacher') is None
        return
    assert model.distill_head.out_channels == model.distill_loss.out_channels == 65536
    assert model.distill_head.in_channels == cfg.embed_dim
    assert model.distill_loss.student_temp == 0.1
    assert model.distill_loss.center_momentum == 0.9
    ema = TeacherSchedule(**model.teacher)
    assert (ema.warmup_temperature, ema.temperature) == (0.04, 0.07)
    # DINO's 30 ImageNet epochs (1.28M images each) of samples at the global batch of 4096.
    assert ema.warmup_iters == 30 * 313
    assert 'ExtendOptimizerStateHook' in hooks
    max_iters = cfg.train_cfg.max_iters
    # Fixed momentum (the paper): 0.996 at batch 1024, scaled to the global batch in training.
    momenta = {ema.momentum_at(i, max_iters, 1024) for i in (0, max_iters // 2, max_iters - 1)}
    assert momenta == {0.996} and ema.base_batch_size == 1024


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


@pytest.mark.slow
def test_b16_data_path_feeds_a_silc_step(tmp_path):
    """WebDataset shard -> 2x224 + 6x96 crops -> preprocessor -> SILC loss (towers shrunk)."""
    _shard(tmp_path / 'shard-0.tar', 4)
    cfg = Config.fromfile('configs/silc/pretrain_b16.py')
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = DATASETS.build(
            dict(cfg.train_dataloader.dataset, shards=str(tmp_path / 'shard-0.tar'), repeat=False))
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
    assert inputs['contrastive_crops'].shape == (2 * 4, 3, 224, 224)
    assert inputs['text'].shape == (4, 77)
    losses = model.loss(inputs, data['data_samples'])
    assert torch.isfinite(losses['loss_contrastive']) and torch.isfinite(losses['loss_distill'])


@pytest.mark.slow
@pytest.mark.parametrize('path,with_silc',
                         [('configs/silc/pretrain_maskclip_b16.py', False),
                          ('configs/silc/pretrain_silc-maskdistill_b16.py', True)])
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
    assert 0 < model_cfg.teacher.momentum < 1
    assert (model_cfg.distill_head is not None) == with_silc
    assert ('warmup_temperature' in model_cfg.teacher) == with_silc
    num_global = 2 if with_silc else 1
    assert cfg.optim_wrapper.type == 'NonFiniteGuardAmpOptimWrapper'

    _shard(tmp_path / 'shard-0.tar', 4)
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = DATASETS.build(
            dict(cfg.train_dataloader.dataset, shards=str(tmp_path / 'shard-0.tar'), repeat=False))
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


def _without(cfg, *keys):
    return {k: v for k, v in cfg.items() if k not in keys}


@pytest.mark.slow
def test_demo_configs_differ_only_in_the_objective():
    """Pretraining/demo configs add to a base instead of inheriting and nulling parts."""
    clip = Config.fromfile('configs/silc/demo_clip_tiny.py')
    silc = Config.fromfile('configs/silc/demo_silc_tiny.py')
    distill = Config.fromfile('configs/silc/demo_distill_tiny.py')
    assert 'distill_head' not in clip.model
    objective = ('distill_head', 'distill_loss', 'teacher', 'contrastive_weight')
    assert _without(silc.model, *objective) == _without(clip.model, *objective)
    for key in ('train_dataloader', 'train_cfg', 'param_scheduler', 'randomness'):
        assert silc[key] == clip[key] == distill[key], key
    assert distill.model.contrastive_weight == 0.0
    assert distill.model.distill_head == silc.model.distill_head
    # The demo's text tower reads what the pipeline's tokenizer writes.
    assert clip.model.text_encoder.context_length == clip.caption_context_length
    # Zero-shot segmentation builds the same towers, without a pretraining config under it.
    zs = Config.fromfile('configs/silc/zs_demo.py')
    assert zs.model.image_encoder == clip.model.image_encoder
    assert zs.model.text_encoder == clip.model.text_encoder
    assert zs.model.templates == clip.model.zero_shot_templates
    for key in ('train_dataloader', 'optim_wrapper', 'param_scheduler', 'val_dataloader'):
        assert zs.get(key) is None, key
    # The demo's image-text loss uses the global crops, which are never flipped (captions say
    # left / right) nor hue-shifted.
    pipeline = clip.train_dataloader.dataset.pipeline
    global_view = pipeline[0].transforms[0]
    assert 'RandomFlip' not in [t['type'] for t in global_view]
    assert pipeline[-1].get('num_contrastive_crops', 0) == 0


@pytest.mark.slow
def test_b16_configs_add_distillation_to_the_clip_baseline():
    clip = Config.fromfile('configs/silc/pretrain_clip_b16.py')
    silc = Config.fromfile('configs/silc/pretrain_b16.py')
    assert 'distill_head' not in clip.model
    assert silc.train_dataloader == clip.train_dataloader
    assert silc.model.text_encoder == clip.model.text_encoder
    assert _without(silc.model.image_encoder, 'drop_path_rate') == clip.model.image_encoder
