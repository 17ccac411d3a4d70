"""openclip2silc: OpenCLIP models with random weights, converted through the command-line tool,
must give the same image and text embeddings in the towers of the printed arch config."""
import contextlib
import io
import zipfile

import open_clip
import pytest
import torch
from mmengine.config import Config

from silc_seg.converters import (MODEL_CONFIGS, build_towers, convert_openclip_state_dict,
                                 load_openclip_checkpoint, verify_state_dict)
from silc_seg.models.backbones import SILCVisionTransformer
from silc_seg.models.losses import ClipContrastiveLoss
from silc_seg.models.text_encoders import SILCTextTransformer
from silc_seg.registry import MODELS
from silc_seg.utils import get_config_path
from .helpers import TOLERANCE, convert_with_tool, load_tool, max_diff, perturb

TEXTS = ['a photo of a cat.', 'a diagram', 'two dogs playing in the snow at night', '']


@pytest.mark.slow
@torch.no_grad()
def test_vit_b_16(tmp_path):
    reference, towers, state_dict, config = convert_with_tool(tmp_path, 'ViT-B-16',
                                                              'vit-b-16.safetensors')
    assert config == 'configs/_base_/models/openclip_vit-b-16.py'
    torch.manual_seed(1)
    images = torch.randn(1, 3, 224, 224)
    tokens = open_clip.tokenize(TEXTS)
    image_diff = max_diff(towers['image_encoder'].encode_image(images),
                          reference.encode_image(images))
    text_diff = max_diff(towers['text_encoder'](tokens), reference.encode_text(tokens))
    print(f'ViT-B-16 max abs diff: image {image_diff:.2e}, text {text_diff:.2e}')
    assert image_diff <= TOLERANCE and text_diff <= TOLERANCE
    assert state_dict['contrastive_loss.logit_scale'] == reference.logit_scale
    # Dense path: each patch token gets ln_post and the projection, as OpenCLIP's tokens.
    reference.visual.output_tokens = True
    _, ref_tokens = reference.visual(images)
    dense = towers['image_encoder'].encode_dense(images)['dense']
    assert max_diff(dense.flatten(2).transpose(1, 2), ref_tokens @ reference.visual.proj) <= \
        TOLERANCE


def tiny_openai_clip(quick_gelu=True, ls_init_value=None):
    torch.manual_seed(0)
    model = open_clip.model.CLIP(
        embed_dim=24,
        vision_cfg=dict(
            image_size=32,
            patch_size=8,
            width=32,
            layers=2,
            head_width=16,
            ls_init_value=ls_init_value),
        text_cfg=dict(
            context_length=16,
            vocab_size=49408,
            width=32,
            heads=2,
            layers=2,
            ls_init_value=ls_init_value),
        quick_gelu=quick_gelu).eval()
    perturb(model)
    return model


def tiny_towers(act, layer_scale_init=None):
    image = SILCVisionTransformer(
        arch=dict(width=32, depth=2, num_heads=2, patch_size=8),
        img_size=32,
        output_dim=24,
        ln_pre=True,
        act=act,
        layer_scale_init=layer_scale_init)
    text = SILCTextTransformer(
        arch=dict(width=32, depth=2, num_heads=2),
        context_length=16,
        output_dim=24,
        act=act,
        layer_scale_init=layer_scale_init)
    return dict(
        image_encoder=image.eval(),
        text_encoder=text.eval(),
        contrastive_loss=ClipContrastiveLoss())


# OpenAI distributes TorchScript archives; torch deprecates TorchScript but still reads them.
@pytest.mark.slow
@pytest.mark.filterwarnings('ignore:`torch.jit:FutureWarning')
@torch.no_grad()
def test_openai_torchscript_archive_and_quick_gelu(tmp_path):
    reference = tiny_openai_clip(quick_gelu=True)
    images = torch.randn(2, 3, 32, 32)
    archive = tmp_path / 'openai.pt'
    torch.jit.trace_module(reference, {'encode_image': images}).save(str(archive))
    assert zipfile.is_zipfile(archive)
    state_dict, is_jit = load_openclip_checkpoint(str(archive))
    assert is_jit
    towers = tiny_towers('quick_gelu')
    verify_state_dict(convert_openclip_state_dict(state_dict), towers)
    tokens = open_clip.tokenize(TEXTS, context_length=16)
    assert max_diff(towers['image_encoder'].encode_image(images),
                    reference.encode_image(images)) <= TOLERANCE
    assert max_diff(towers['text_encoder'](tokens), reference.encode_text(tokens)) <= TOLERANCE
    # Given as `ViT-B-16`, an OpenAI archive is converted for the QuickGELU towers (this tiny
    # one then fails the B/16 shape check).
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), pytest.raises(KeyError, match='shape mismatch'):
        load_tool('openclip2silc').main(
            [str(archive), str(tmp_path / 'out.pth'), '--model', 'ViT-B-16'])
    assert 'QuickGELU towers of ViT-B-16-quickgelu' in stdout.getvalue()
    # The activation matters: GELU towers do not reproduce QuickGELU weights.
    gelu = tiny_towers('gelu')
    verify_state_dict(convert_openclip_state_dict(state_dict), gelu)
    assert max_diff(gelu['image_encoder'].encode_image(images),
                    reference.encode_image(images)) > 1e-3


@torch.no_grad()
def test_layer_scale_and_safetensors_source(tmp_path):
    from safetensors.torch import save_file
    reference = tiny_openai_clip(ls_init_value=0.5)
    path = tmp_path / 'open_clip_model.safetensors'
    save_file(reference.state_dict(), str(path))
    state_dict, is_jit = load_openclip_checkpoint(str(path))
    assert not is_jit
    converted = convert_openclip_state_dict(state_dict)
    assert 'image_encoder.blocks.1.ls_2.gamma' in converted
    with pytest.raises(KeyError, match='unexpected key'):
        verify_state_dict(converted, tiny_towers('quick_gelu'))
    towers = tiny_towers('quick_gelu', layer_scale_init=0.5)
    verify_state_dict(converted, towers)
    images = torch.randn(2, 3, 32, 32)
    tokens = open_clip.tokenize(TEXTS, context_length=16)
    assert max_diff(towers['image_encoder'].encode_image(images),
                    reference.encode_image(images)) <= TOLERANCE
    assert max_diff(towers['text_encoder'](tokens), reference.encode_text(tokens)) <= TOLERANCE


@pytest.mark.slow
def test_training_checkpoint_wrapper_and_errors(tmp_path):
    reference = tiny_openai_clip()
    wrapped = {
        'epoch': 3,
        'state_dict': {
            f'module.{k}': v
            for k, v in reference.state_dict().items()
        }
    }
    path = tmp_path / 'epoch_3.pt'
    torch.save(wrapped, path)
    state_dict, is_jit = load_openclip_checkpoint(str(path))
    assert not is_jit
    converted = convert_openclip_state_dict(state_dict)
    assert converted.keys() == convert_openclip_state_dict(reference.state_dict()).keys()

    unknown = dict(reference.state_dict(), **{'visual.extra_head.weight': torch.zeros(2)})
    with pytest.raises(KeyError, match='visual.extra_head.weight'):
        convert_openclip_state_dict(unknown)
    with pytest.raises(KeyError, match='no text_encoder weights'):
        convert_openclip_state_dict({
            k: v
            for k, v in reference.state_dict().items() if k.startswith('visual.')
        })
    towers = tiny_towers('quick_gelu')
    partial = {k: v for k, v in converted.items() if 'blocks.1.' not in k}
    with pytest.raises(KeyError, match=r'missing key\(s\): image_encoder.blocks.1'):
        verify_state_dict(partial, towers)
    # A checkpoint of another size names the shapes that do not fit.
    tool = load_tool('openclip2silc')
    torch.save(reference.state_dict(), tmp_path / 'tiny.pt')
    with pytest.raises(KeyError, match='shape mismatch'):
        tool.main([str(tmp_path / 'tiny.pt'), str(tmp_path / 'out.pth'), '--model', 'ViT-B-32'])
    assert not (tmp_path / 'out.pth').exists()


@pytest.mark.parametrize(
    'config',
    sorted(set(MODEL_CONFIGS.values())) +
    ['configs/_base_/models/silc_vit-b16.py', 'configs/_base_/models/silc_vit-tiny.py'])
def test_arch_configs_are_consistent(config):
    cfg = Config.fromfile(get_config_path(config))
    # The model uses the very towers the file defines at top level (also after inheritance).
    for name in ('image_encoder', 'text_encoder', 'tokenizer'):
        assert cfg.model[name] == cfg[name], name
    assert cfg.model.type == 'SILC'
    quick = config.endswith('-quickgelu.py')
    assert (cfg.image_encoder.get('act') == 'quick_gelu') == quick
    assert (cfg.text_encoder.get('act') == 'quick_gelu') == quick
    if 'l-14' in config:
        assert cfg.image_encoder.arch == 'l14' and cfg.text_encoder.arch == 'clip-l'
        assert cfg.image_encoder.output_dim == cfg.text_encoder.output_dim == 768
    if 'b-32' in config:
        assert cfg.image_encoder.arch == 'b32'


def test_tiny_arch_config_builds_and_embeds():
    towers = build_towers('configs/_base_/models/silc_vit-tiny.py')
    cfg = Config.fromfile(get_config_path('_base_/models/silc_vit-tiny.py'))
    tokens = MODELS.build(cfg.tokenizer)(['a red square', 'a blue circle'])
    assert towers['text_encoder'](tokens).shape == (2, 128)
    assert towers['image_encoder'].encode_image(torch.randn(2, 3, 64, 64)).shape == (2, 128)


@pytest.mark.slow
@pytest.mark.parametrize('model_name', sorted(MODEL_CONFIGS))
def test_every_model_converts_into_its_arch_config(model_name):
    # Structure only (keys and shapes, no data), so that ViT-L-14 costs no memory or time;
    # the numerics of the layouts are checked by the parity tests above.
    with torch.device('meta'):
        reference = open_clip.create_model(model_name, pretrained=None, device='meta')
        towers = build_towers(MODEL_CONFIGS[model_name])
    verify_state_dict(convert_openclip_state_dict(reference.state_dict()), towers)
