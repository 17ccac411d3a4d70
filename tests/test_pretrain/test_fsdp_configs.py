"""The large-tower FSDP recipes: they load, name FSDP with activation checkpointing and the bf16
policy, keep the towers' own checkpointing off, and build (towers shrunk to tiny widths). The
memory tool counts the real towers' parameters on the meta device."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from silc_seg.registry import MODELS

REPO = Path(__file__).resolve().parents[2]
RECIPES = [
    'configs/silc/pretrain_silc_vit-b16_fsdp.py', 'configs/silc/pretrain_silc_vit-l16_fsdp.py',
    'configs/silc/pretrain_silc_so400m14_fsdp.py'
]
# The SigLIP 2 recipes and the released-model configs whose towers they train.
SIGLIP2_RECIPES = {
    'configs/silc/pretrain_siglip2_vit-l16_fsdp.py':
    'configs/_base_/models/siglip2_vit-l-16-256.py',
    'configs/silc/pretrain_siglip2_so400m14_fsdp.py':
    'configs/_base_/models/siglip2_vit-so400m-14.py',
}


@pytest.mark.parametrize('path', RECIPES + list(SIGLIP2_RECIPES))
def test_recipe_settings(path):
    cfg = Config.fromfile(str(REPO / path))
    assert cfg.runner_type == 'FlexibleRunner' and cfg.model_wrapper_cfg is None
    strategy = cfg.strategy
    assert strategy.type == 'SILCFSDPStrategy' and strategy.state_dict_cfg == 'full'
    assert strategy.activation_checkpointing.check_fn == 'silc_checkpoint_fn'
    wrapper = strategy.model_wrapper
    assert wrapper.type == 'mmseg.TrainStepFSDP'
    assert wrapper.auto_wrap_policy.type == 'silc_fsdp_wrap_policy'
    assert wrapper.mixed_precision == dict(
        param_dtype='bfloat16', reduce_dtype='float32', buffer_dtype='float32')
    assert cfg.optim_wrapper.dtype == 'bfloat16' and cfg.optim_wrapper.use_fsdp
    assert not cfg.model.image_encoder.get('with_cp', False)
    assert not cfg.model.text_encoder.get('with_cp', False)
    hooks = [hook['type'] for hook in cfg.custom_hooks]
    assert 'ExtendOptimizerStateHook' not in hooks
    # DINO's per-parameter clip (SILC recipes) or the global norm (SigLIP 2, FSDP.clip_grad_norm_)
    assert 'PerParameterGradClipHook' in hooks or cfg.optim_wrapper.clip_grad.max_norm > 0
    tokenizer = cfg.train_dataloader.dataset.pipeline[1]['tokenizer']
    assert tokenizer == cfg.model.tokenizer  # captions tokenized for this text tower


@pytest.mark.slow
@pytest.mark.parametrize('path', RECIPES)
def test_recipe_builds_with_tiny_towers(path):
    cfg = Config.fromfile(str(REPO / path))
    init_default_scope('mmseg')
    model_cfg = cfg.model
    arch = model_cfg.image_encoder.arch  # a dict, or a preset name such as 'b16'
    patch = arch['patch_size'] if isinstance(arch, dict) else int(arch.lstrip('bl'))
    model_cfg.image_encoder.arch = dict(width=32, depth=2, num_heads=2, patch_size=patch)
    model_cfg.text_encoder.arch = dict(
        model_cfg.text_encoder.arch, width=32, depth=2, num_heads=2) if isinstance(
            model_cfg.text_encoder.arch, dict) else dict(
                context_length=77, vocab_size=49408, width=32, depth=2, num_heads=2)
    model_cfg.text_encoder.output_dim = 32
    model_cfg.image_encoder.output_dim = 32 if model_cfg.image_encoder.output_dim else None
    model_cfg.distill_head.update(
        in_channels=32, hidden_channels=32, bottleneck_channels=16, out_channels=64)
    model_cfg.distill_loss.out_channels = 64
    model_cfg.tokenizer = None
    model = MODELS.build(model_cfg)
    assert model.with_distill
    images = torch.randn(2, 3, 224, 224)
    assert model.encode_image(images).shape == (2, 32)
    assert model.teacher_image_encoder.encode_image(images).shape == (2, 32)


def _meta_model(cfg_dict):
    with torch.device('meta'):
        return MODELS.build(dict(cfg_dict, tokenizer=None))


def _shapes(module):
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize('path', list(SIGLIP2_RECIPES))
def test_siglip2_recipe_builds_on_meta_with_the_released_towers(path):
    """Full size on the meta device: the recipe's image and text towers have exactly the
    parameter shapes of the released model's config (what the converters fill), the second
    stage's heads and the caption decoder take the towers' width, and the EMA teacher mirrors
    the image tower."""
    cfg = Config.fromfile(str(REPO / path))
    released = Config.fromfile(str(REPO / SIGLIP2_RECIPES[path]))
    init_default_scope('mmseg')
    model = _meta_model(cfg.model)
    reference = _meta_model(released.model)
    assert type(model).__name__ == 'SigLIP2'
    assert all(param.is_meta for param in model.parameters())
    for tower in ('image_encoder', 'text_encoder'):
        assert _shapes(getattr(model, tower)) == _shapes(getattr(reference, tower)), tower
    assert _shapes(model.teacher_image_encoder) == _shapes(model.image_encoder)
    width = reference.image_encoder.pos_embed.shape[-1]  # no image projection (SigLIP 2)
    for head in (model.distill_head, model.masked_head):
        assert head.mlp[0].weight.shape[1] == width
    assert model.caption_decoder.input_proj.weight.shape == (width, width)
    assert model.caption_decoder.token_embedding.weight.shape[1] == width


@pytest.mark.slow
def test_memory_tool_counts_the_real_towers():
    """ViT-L/16: 304M-parameter image tower (ViT-L/16 with a 768-d projection) + 123M text
    tower; the teacher is the image tower and the head."""
    result = subprocess.run(
        [sys.executable, 'tools/analysis_tools/fsdp_memory.py', RECIPES[1], '--gpus', '256'],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            'PYTHONPATH': str(REPO),
            'PATH': '/usr/bin:/bin'
        })
    assert result.returncode == 0, result.stderr[-3000:]
    assert '| 256 | 128 |' in result.stdout
