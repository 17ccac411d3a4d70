"""Checkpoints that do not fit, as a new user meets them (issue 24, item 3): damaged files are
named as damaged (not as a security refusal), a tower built without a layer the checkpoint has
(ln_pre) is an error, and a converted checkpoint stops a model whose towers have another
activation or layout than the config it records."""
import os.path as osp
import pickle

import pytest
import torch
import torch.nn as nn

from silc_seg.engine.checkpointing import CheckpointDamagedError
from silc_seg.models.backbones import SILCVisionTransformer
from silc_seg.models.text_encoders import SILCTextTransformer
from silc_seg.registry import MODELS
from silc_seg.utils import (CheckpointMismatchError, CheckpointRefusedError, get_config_path,
                            load_model_checkpoint, torch_load_weights_only)
from tests.test_foundation.test_checkpoint_loading import oracle_setup, run_tool  # noqa: F401

SECURITY_WORDS = ('can run code', 'Refused to load')


def _damaged_files(tmp_path):
    complete = tmp_path / 'complete.pth'
    torch.save(dict(state_dict=dict(w=torch.arange(1000.))), complete)
    data = complete.read_bytes()
    files = {
        'empty.pth': (b'', 'empty (0 bytes)'),
        'random.pth': (bytes(range(7, 256)) * 64, 'not a PyTorch checkpoint'),
        'notes.pth': (b'model = dict(type="SILC")\n', 'not a PyTorch checkpoint'),
        'truncated.pth': (data[:len(data) // 2], 'not a complete torch.save archive'),
    }
    for name, (content, _) in files.items():
        (tmp_path / name).write_bytes(content)
    return {str(tmp_path / name): reason for name, (_, reason) in files.items()}


def test_damaged_files_are_named_damaged_not_refused(tmp_path):
    """On main: the empty file raised a bare EOFError, random bytes a refusal saying the file
    'can run code'."""
    for path, reason in _damaged_files(tmp_path).items():
        with pytest.raises(CheckpointDamagedError) as error:
            torch_load_weights_only(path)
        message = str(error.value)
        assert path in message and reason in message, message
        assert not any(word in message for word in SECURITY_WORDS), message
    # A legacy (non-zip) torch.save file still loads; a crafted pickle is still refused.
    legacy = tmp_path / 'legacy.pth'
    torch.save(dict(w=torch.ones(2)), legacy, _use_new_zipfile_serialization=False)
    assert torch.equal(torch_load_weights_only(str(legacy))['w'], torch.ones(2))
    crafted = tmp_path / 'crafted.pth'
    crafted.write_bytes(pickle.dumps(eval, protocol=2))
    with pytest.raises(CheckpointRefusedError, match='can run code'):
        torch_load_weights_only(str(crafted))


@pytest.mark.slow
def test_test_tool_names_an_empty_checkpoint(oracle_setup, tmp_path):  # noqa: F811
    _, config, _, _ = oracle_setup
    empty = tmp_path / 'iter_200.pth'
    empty.write_bytes(b'')
    result = run_tool('tools/test.py', config, str(empty), '--work-dir', str(tmp_path / 'w'))
    assert result.returncode != 0
    assert f'{empty} is empty (0 bytes)' in result.stderr, result.stderr[-3000:]
    assert 'EOFError' not in result.stderr and 'can run code' not in result.stderr


def test_b16_preset_builds_the_tower_of_b16_checkpoints():
    """The README plug-in config says ``arch='b16'`` (no ln_pre): on main it built without
    ln_pre, and OpenCLIP / SILC B/16 checkpoints (which have it) loaded with a warning only."""
    with torch.device('meta'):
        plugin = SILCVisionTransformer(arch='b16', img_size=512, out_indices=(2, 5, 8, 11))
        tower = MODELS.build(_tower_cfg('configs/_base_/towers/silc_vit-b16.py'))
        siglip = MODELS.build(_tower_cfg('configs/_base_/towers/siglip_vit-b-16.py'))
    assert isinstance(plugin.ln_pre, nn.LayerNorm)
    assert set(plugin.state_dict()) == set(tower.state_dict())
    assert not isinstance(siglip.ln_pre, nn.LayerNorm)  # SigLIP configs say ln_pre=False
    for arch, has_ln_pre in (('b32', True), ('l14', True), ('tiny', False), ('s16', False)):
        with torch.device('meta'):
            built = SILCVisionTransformer(arch=arch)
        assert isinstance(built.ln_pre, nn.LayerNorm) == has_ln_pre, arch
    with torch.device('meta'):
        assert not isinstance(SILCVisionTransformer(arch='b16', ln_pre=False).ln_pre, nn.LayerNorm)


def _tower_cfg(path):
    from mmengine.config import Config
    return Config.fromfile(get_config_path(path)).image_encoder


TINY = dict(arch=dict(width=16, depth=1, num_heads=2, patch_size=8), img_size=16, output_dim=8)


def test_unused_tower_weights_are_an_error(tmp_path):
    torch.manual_seed(0)
    source = SILCVisionTransformer(ln_pre=True, **TINY)
    state = {f'image_encoder.{k}': v for k, v in source.state_dict().items()}
    state.update({'teacher.proj.weight': torch.ones(2)})
    torch.save(dict(state_dict=state), tmp_path / 'silc.pth')
    # A tower loaded by prefix (init_cfg Pretrained, the plug-in path).
    tower = SILCVisionTransformer(
        ln_pre=False,
        **TINY,
        init_cfg=dict(
            type='Pretrained', prefix='image_encoder.', checkpoint=str(tmp_path / 'silc.pth')))
    with pytest.raises(CheckpointMismatchError) as error:
        tower.init_weights()
    message = str(error.value)
    assert "under 'image_encoder.'" in message and '2 weight(s)' in message
    assert 'ln_pre.bias, ln_pre.weight' in message and 'ln_pre=True' in message

    # A whole model: weights of a module it has are an error, of modules it lacks skipped.
    class Segmentor(nn.Module):

        def __init__(self, ln_pre):
            super().__init__()
            self.image_encoder = SILCVisionTransformer(ln_pre=ln_pre, **TINY)

    with pytest.raises(CheckpointMismatchError, match='image_encoder.ln_pre.bias'):
        load_model_checkpoint(Segmentor(ln_pre=False), str(tmp_path / 'silc.pth'))
    model = Segmentor(ln_pre=True)
    with pytest.warns(UserWarning, match=r'skipped 1 weight\(s\).*teacher\.\* \(1\)'):
        load_model_checkpoint(model, str(tmp_path / 'silc.pth'))
    for key, value in source.state_dict().items():
        torch.testing.assert_close(model.image_encoder.state_dict()[key], value, rtol=0, atol=0)


def _write_tower_config(tmp_path, act):
    path = tmp_path / f'towers_{act}.py'
    path.write_text(
        f'image_encoder = dict(type="SILCVisionTransformer", arch=dict(width=16, depth=1, '
        f'num_heads=2, patch_size=8), img_size=16, output_dim=8, ln_pre=True, act="{act}")\n'
        'text_encoder = dict(type="SILCTextTransformer", arch=dict(width=16, depth=1, '
        f'num_heads=2), context_length=8, vocab_size=50, output_dim=8, act="{act}")\n')
    return str(path)


class TwoTowers(nn.Module):

    def __init__(self, config):
        super().__init__()
        from mmengine.config import Config
        cfg = Config.fromfile(config)
        self.image_encoder = MODELS.build(cfg.image_encoder)
        self.text_encoder = MODELS.build(cfg.text_encoder)


def test_quick_gelu_checkpoint_stops_gelu_towers(tmp_path):
    """On main, QuickGELU weights loaded into GELU towers with no sign (same keys, shapes)."""
    quick, gelu = _write_tower_config(tmp_path,
                                      'quick_gelu'), _write_tower_config(tmp_path, 'gelu')
    torch.manual_seed(0)
    source = TwoTowers(quick)
    for name in ('converted.pth', 'converted.safetensors'):
        path = str(tmp_path / name)
        meta = dict(model='ViT-B-16-quickgelu', config=quick)
        if name.endswith('.safetensors'):
            from safetensors.torch import save_file
            save_file(source.state_dict(), path, metadata=meta)
        else:
            torch.save(dict(state_dict=source.state_dict(), meta=meta), path)
        with pytest.raises(CheckpointMismatchError) as error:
            load_model_checkpoint(TwoTowers(gelu), path)
        message = str(error.value)
        assert f'converted for the towers of {quick} (ViT-B-16-quickgelu)' in message
        assert "image_encoder.act='gelu' in the model vs 'quick_gelu'" in message
        assert "text_encoder.act='gelu' in the model vs 'quick_gelu'" in message
        assert ('--cfg-options model.image_encoder.act=quick_gelu '
                'model.text_encoder.act=quick_gelu') in message
        # The towers the config records load, and compute with QuickGELU.
        model = TwoTowers(quick)
        load_model_checkpoint(model, path)
        block = model.image_encoder.blocks[0].mlp
        x = torch.randn(3, 16)
        hidden = block.fc1(x)
        expected = block.fc2(hidden * torch.sigmoid(1.702 * hidden))  # QuickGELU, written out
        torch.testing.assert_close(block(x), expected)
    # A tower loaded by prefix is checked too; a recorded config that does not exist warns.
    tower = MODELS.build(
        dict(
            type='SILCVisionTransformer',
            arch=dict(width=16, depth=1, num_heads=2, patch_size=8),
            img_size=16,
            output_dim=8,
            ln_pre=True,
            act='gelu_tanh'))
    with pytest.raises(
            CheckpointMismatchError,
            match="image_encoder.act='gelu_tanh' in the "
            "model vs 'quick_gelu'"):
        load_model_checkpoint(tower, str(tmp_path / 'converted.pth'), prefix='image_encoder.')
    torch.save(
        dict(state_dict=source.state_dict(), meta=dict(config='configs/nowhere.py')),
        tmp_path / 'elsewhere.pth')
    with pytest.warns(UserWarning, match='records the config configs/nowhere.py'):
        load_model_checkpoint(TwoTowers(gelu), str(tmp_path / 'elsewhere.pth'))
    assert osp.isfile(quick)


def test_layout_is_read_from_the_built_towers():
    for act in ('gelu', 'gelu_tanh', 'quick_gelu'):
        from silc_seg.utils.checkpoint import tower_layout
        image = SILCVisionTransformer(act=act, pool_type='gap', **TINY)
        text = SILCTextTransformer(
            arch=dict(width=16, depth=1, num_heads=2),
            context_length=8,
            vocab_size=50,
            output_dim=8,
            act=act)
        assert tower_layout(image) == dict(
            act=act, ln_pre=False, pool_type='gap', width=16, norm_eps=1e-5)
        assert tower_layout(text)['act'] == act


def test_converter_says_which_activation_and_why():
    """On main an OpenAI state dict (not a TorchScript archive) converted with --model ViT-B-16
    became GELU towers without a word."""
    from silc_seg.converters import choose_openclip_model
    model, notice = choose_openclip_model('ViT-B-16', {}, is_openai_jit=False)
    assert model == 'ViT-B-16'
    assert notice.startswith("activation gelu: the activation of open_clip's ViT-B-16")
    assert "OpenAI's released CLIP weights need QuickGELU: --model ViT-B-16-quickgelu" in notice
    openai = {'input_resolution': torch.tensor(224), 'visual.proj': torch.zeros(1)}
    model, notice = choose_openclip_model('ViT-B-16', openai, is_openai_jit=False)
    assert model == 'ViT-B-16-quickgelu'
    assert 'an OpenAI state dict (it holds input_resolution)' in notice and 'QuickGELU' in notice
    model, notice = choose_openclip_model('ViT-B-16-quickgelu', {}, is_openai_jit=False)
    assert model == 'ViT-B-16-quickgelu' and notice.startswith('activation quick_gelu')
