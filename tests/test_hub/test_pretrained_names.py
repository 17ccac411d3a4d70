"""Weights by name (openai:, open_clip:, hf-hub:, big_vision URLs) on offline stand-ins: each
name form gives towers whose embeddings are the open_clip model's, MMEngine loads the names
wherever a checkpoint path goes, conversions are cached by content, and every failure is one
clear error naming the URL, the cache path and the manual converter command."""
import os.path as osp

import numpy as np
import open_clip
import pytest
import torch
from torch import nn

from silc_seg.converters import MODEL_CONFIGS, build_towers, convert_big_vision_arrays
from silc_seg.hub import PretrainedUnavailableError, pretrained, resolve_pretrained
from silc_seg.utils import load_model_checkpoint
from .stand_ins import (TINY, TINY_HUB_REPO, fill_hf_cache, open_clip_config_json, sha256,
                        state_dict_bytes)

TEXTS = ['a photo of a cat.', 'grass', '']


@torch.no_grad()
def assert_towers_match(name, config, reference):
    """The towers of ``config``, loaded from ``name`` by MMEngine's loader, embed as
    ``reference`` (the open_clip model the published file holds)."""
    towers = nn.ModuleDict(build_towers(config)).eval()
    load_model_checkpoint(towers, name)
    torch.manual_seed(3)
    images = torch.randn(2, 3, 32, 32)
    tokens = open_clip.tokenize(TEXTS, context_length=16)
    image_diff = (towers['image_encoder'].encode_image(images) -
                  reference.encode_image(images)).abs().max()
    text_diff = (towers['text_encoder'](tokens) - reference.encode_text(tokens)).abs().max()
    assert image_diff <= 1e-4 and text_diff <= 1e-4, (image_diff, text_diff)
    assert torch.equal(towers['contrastive_loss'].logit_scale, reference.logit_scale)


def test_openai_name_downloads_checks_converts_once(publishers, conversions):
    weights = resolve_pretrained(f'openai:{TINY}')
    # OpenAI's weights were trained with QuickGELU: the name picks those towers.
    assert weights.model == f'{TINY}-quickgelu'
    assert weights.config == MODEL_CONFIGS[f'{TINY}-quickgelu']
    # open_clip's downloader and cache (the checksum in the URL checked).
    assert weights.source == osp.join(publishers.home, '.cache', 'clip', f'{TINY}.pt')
    assert osp.basename(weights.checkpoint) == (
        f'{sha256(open(weights.source, "rb").read())}-v{pretrained.CONVERSION_VERSION}'
        '.safetensors')
    assert_towers_match(f'openai:{TINY}', weights.config, publishers.models['openai'])
    # The second resolution (inside load_model_checkpoint) neither downloads nor converts.
    assert len(conversions) == 1 and len(publishers.server.hits) == 1


@pytest.mark.slow
def test_open_clip_tags_by_url_and_by_hub(publishers, conversions):
    weights = resolve_pretrained(f'open_clip:{TINY}/laion')
    assert weights.model == TINY and publishers.server.hits == [
        '/' + publishers.urls['laion'].split('://')[1]
    ]
    assert_towers_match(f'open_clip:{TINY}/laion', weights.config, publishers.models['laion'])
    # A tag published only on the hub: huggingface_hub's (offline, pre-filled) cache.
    weights = resolve_pretrained(f'open_clip:{TINY}/hub')
    assert weights.source.startswith(publishers.hub_cache)
    assert weights.source.endswith('open_clip_model.safetensors')
    assert_towers_match(f'open_clip:{TINY}/hub', weights.config, publishers.models['hub'])
    assert len(conversions) == 2


def test_hf_hub_repo_arch_from_its_open_clip_config(publishers, tmp_path):
    weights = resolve_pretrained(f'hf-hub:{TINY_HUB_REPO}')
    assert weights.model == TINY  # model_cfg matched, no QuickGELU
    assert_towers_match(f'hf-hub:{TINY_HUB_REPO}', weights.config, publishers.models['hub'])
    # The same weights under a config saying QuickGELU get the QuickGELU towers.
    fill_hf_cache(
        publishers.hub_cache, 'silc-test/tiny-clip-quickgelu', {
            'open_clip_config.json':
            open_clip_config_json(quick_gelu=True),
            'open_clip_pytorch_model.bin':
            state_dict_bytes(publishers.models['openai'], str(tmp_path / 'q.bin'))
        })
    weights = resolve_pretrained('hf-hub:silc-test/tiny-clip-quickgelu')
    assert weights.model == f'{TINY}-quickgelu'
    assert weights.source.endswith('open_clip_pytorch_model.bin')
    assert_towers_match('hf-hub:silc-test/tiny-clip-quickgelu', weights.config,
                        publishers.models['openai'])


def test_mmengine_load_from_and_pretrained_init_cfg(publishers):
    from mmengine.runner.checkpoint import _load_checkpoint

    from silc_seg.registry import MODELS
    from silc_seg.utils import get_config_path  # noqa: F401  (registers the schemes)
    checkpoint = _load_checkpoint(f'open_clip:{TINY}/laion')
    assert checkpoint['meta']['model'] == TINY
    assert checkpoint['meta']['config'] == MODEL_CONFIGS[TINY]
    from mmengine.config import Config
    towers = Config.fromfile(MODEL_CONFIGS[TINY])
    init_cfg = dict(
        type='Pretrained', checkpoint=f'open_clip:{TINY}/laion', prefix='image_encoder.')
    image_encoder = MODELS.build(dict(towers.image_encoder, init_cfg=init_cfg))
    image_encoder.init_weights()
    reference = publishers.models['laion'].visual
    assert torch.equal(image_encoder.cls_token.flatten(), reference.class_embedding)


def test_checksum_mismatch_and_truncated_downloads_are_refused(publishers):
    # OpenAI's real ViT-B-16 entry; the stand-in serves other bytes at its URL.
    url = open_clip.pretrained.get_pretrained_url('ViT-B-16', 'openai')
    publishers.server.serve(url, b'not the weights' * 100)
    cache = osp.join(publishers.home, '.cache', 'clip', 'ViT-B-16.pt')
    with pytest.raises(PretrainedUnavailableError) as error:
        resolve_pretrained('openai:ViT-B-16')
    message = str(error.value)
    assert "does not have the publisher's checksum 5806e77c" in message
    assert f'URL: {publishers.server.url}/openaipublic.azureedge.net/clip/models/' in message
    assert f'cache path: {cache}' in message and not osp.exists(cache)
    assert '--model ViT-B-16-quickgelu' in message and 'openclip2silc.py' in message
    # A download that stops halfway fails the checksum: refused, nothing kept.
    path = '/' + publishers.urls['laion'].split('://')[1]
    publishers.server.truncate.add(path)
    with pytest.raises(PretrainedUnavailableError, match='truncated or corrupt'):
        resolve_pretrained(f'open_clip:{TINY}/laion')
    assert not osp.exists(osp.join(publishers.home, '.cache', 'clip', osp.basename(path)))


def test_offline_and_unknown_names_give_one_clear_error(publishers, monkeypatch):
    with pytest.raises(PretrainedUnavailableError) as error:
        resolve_pretrained('hf-hub:silc-test/not-cached')
    message = str(error.value)
    assert 'https://huggingface.co/silc-test/not-cached/resolve/main/open_clip_config.json' in \
        message
    assert osp.join(publishers.hub_cache, 'models--silc-test--not-cached') in message
    assert 'tools/model_converters/openclip2silc.py' in message
    with pytest.raises(PretrainedUnavailableError, match=r'its tags: .*laion2b_s34b_b88k'):
        resolve_pretrained('open_clip:ViT-B-16/no_such_tag')
    with pytest.raises(PretrainedUnavailableError, match='open_clip has no pretrained'):
        resolve_pretrained('openai:NoSuchModel')
    with pytest.raises(PretrainedUnavailableError, match='write open_clip:MODEL/TAG'):
        resolve_pretrained('open_clip:ViT-B-16')
    # A released SigLIP 2 repository that is not in the cache: the error names its URL and the
    # SigLIP 2 converter.
    with pytest.raises(PretrainedUnavailableError) as error:
        resolve_pretrained('hf-hub:timm/ViT-B-16-SigLIP2')
    assert 'huggingface.co/timm/ViT-B-16-SigLIP2/resolve/main/open_clip_config.json' in \
        str(error.value)
    # No server where the download goes.
    monkeypatch.setenv('SILC_SEG_DOWNLOAD_BASE_URL', 'http://127.0.0.1:9')
    with pytest.raises(PretrainedUnavailableError, match='download failed') as error:
        resolve_pretrained(f'open_clip:{TINY}/laion')
    assert 'URL: http://127.0.0.1:9/github.com/mlfoundations/' in str(error.value)


SIGLIP_TOWERS = """_base_ = [{normalization!r}]
image_encoder = dict(type='SILCVisionTransformer',
                     arch=dict(width=32, depth=2, num_heads=2, patch_size=8), img_size=32,
                     output_dim=None, pool_type='map', class_token=False, ln_pre=False,
                     patch_bias=True, norm_eps=1e-6)
text_encoder = dict(type='SILCTextTransformer', arch=dict(width=32, depth=2, num_heads=2),
                    context_length=16, vocab_size=100, output_dim={text_dim}, causal=False,
                    pool_type='last', proj_bias=True, norm_eps=1e-6)
tokenizer = dict(type='SentencePieceTokenizer', model_file='missing.model', context_length=16)
model = dict(contrastive_loss=dict(type='SigLipLoss'))
"""


def test_big_vision_url_with_tokenizer_and_truncation(publishers, monkeypatch, tmp_path):
    from silc_seg.utils import get_config_path
    from tests.test_converters.test_bigvision2silc import big_vision_arrays
    towers = tmp_path / 'tiny_siglip.py'
    towers.write_text(
        SIGLIP_TOWERS.format(
            normalization=get_config_path('_base_/towers/clip_normalization.py'), text_dim=24))
    monkeypatch.setitem(MODEL_CONFIGS, 'SILC-Test-Tiny-SigLIP', str(towers))
    arrays = big_vision_arrays()
    np.savez(tmp_path / 'tiny.npz', **arrays)
    url = 'https://storage.googleapis.com/big_vision/siglip/tiny.npz'
    publishers.server.serve(url, (tmp_path / 'tiny.npz').read_bytes())
    publishers.server.serve(pretrained.T5_VOCABULARY_URL, b'sentencepiece stand-in')
    name = f'{url}#model=SILC-Test-Tiny-SigLIP'
    weights = resolve_pretrained(name)
    assert weights.model == 'SILC-Test-Tiny-SigLIP'
    with open(weights.tokenizer['model_file'], 'rb') as handle:
        assert handle.read() == b'sentencepiece stand-in'
    checkpoint = __import__('mmengine').runner.checkpoint._load_checkpoint(name)
    expected = convert_big_vision_arrays(arrays)
    assert checkpoint['state_dict'].keys() == expected.keys()
    assert all(torch.equal(checkpoint['state_dict'][k], v) for k, v in expected.items())
    with pytest.raises(PretrainedUnavailableError, match='name its towers'):
        resolve_pretrained('https://storage.googleapis.com/big_vision/other.npz')
    truncated = 'https://storage.googleapis.com/big_vision/siglip/cut.npz'
    publishers.server.truncate.add(publishers.server.serve(truncated, b'x' * 1000))
    with pytest.raises(
            PretrainedUnavailableError, match='truncated: 500 of the 1000 bytes') as error:
        resolve_pretrained(f'{truncated}#model=SILC-Test-Tiny-SigLIP')
    assert 'bigvision2silc.py' in str(error.value)
    cache = str(error.value).split('cache path: ')[1].split('\n')[0]
    assert not osp.exists(cache)
    # A complete download that is not what the name says: a conversion error, not a crash.
    publishers.server.truncate.clear()
    with pytest.raises(PretrainedUnavailableError, match=f'the downloaded file {cache} does not'):
        resolve_pretrained(f'{truncated}#model=SILC-Test-Tiny-SigLIP')


SUBPROCESS = """
import sys
from tests.test_hub.stand_ins import register_tiny_architecture
register_tiny_architecture(lambda mapping, key, value: mapping.__setitem__(key, value),
                           sys.argv[1], {})
from silc_seg.hub import resolve_pretrained
print(resolve_pretrained('hf-hub:silc-test/tiny-clip').source)
"""


@pytest.mark.slow
def test_hf_home_and_offline_mode_are_read_from_the_environment(publishers, tmp_path):
    """A fresh process finds the pre-filled cache through HF_HOME and HF_HUB_OFFLINE=1 only."""
    import os
    import subprocess
    import sys
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    env = dict(
        os.environ,
        HF_HOME=str(tmp_path / 'hf-home'),
        HF_HUB_OFFLINE='1',
        PYTHONPATH=repo + os.pathsep + os.environ.get('PYTHONPATH', ''))
    env.pop('HF_HUB_CACHE', None)
    result = subprocess.run(
        [sys.executable, '-c', SUBPROCESS, str(tmp_path)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1].startswith(
        osp.join(publishers.hub_cache, 'models--silc-test--tiny-clip', 'snapshots'))


TINY_SIGLIP_CFG = dict(
    embed_dim=32,
    init_logit_bias=-10,
    custom_text=True,
    vision_cfg=dict(
        image_size=32,
        timm_model_name='silc_test_tiny_siglip',
        timm_model_pretrained=False,
        timm_pool='map',
        timm_proj='none'),
    text_cfg=dict(
        context_length=16,
        vocab_size=100,
        hf_tokenizer_name='silc-test/tiny-siglip',
        width=32,
        heads=2,
        layers=2,
        no_causal_mask=True,
        proj_bias=True,
        pool_type='last',
        norm_kwargs=dict(eps=1e-6)))


def _register_tiny_timm_siglip():
    import timm
    from timm.models import register_model
    if 'silc_test_tiny_siglip' not in timm.list_models('silc_test_*'):

        @register_model
        def silc_test_tiny_siglip(pretrained=False, **kwargs):
            kwargs = {
                key: value
                for key, value in kwargs.items()  # timm's loading options
                if not key.startswith('pretrained') and key != 'cache_dir'
            }
            kwargs = dict(
                dict(
                    img_size=32,
                    patch_size=8,
                    embed_dim=32,
                    depth=2,
                    num_heads=2,
                    class_token=False,
                    global_pool='map'), **kwargs)
            return timm.models.VisionTransformer(**kwargs)


@torch.no_grad()
def test_siglip_hub_repo_with_its_tokenizer_vocabulary(publishers, monkeypatch, tmp_path):
    import json

    from open_clip import factory
    from safetensors.torch import save_file

    from silc_seg.utils import get_config_path
    _register_tiny_timm_siglip()
    monkeypatch.setitem(factory._MODEL_CONFIGS, 'SILC-Test-Tiny-SigLIP', TINY_SIGLIP_CFG)
    towers = tmp_path / 'tiny_siglip.py'
    towers.write_text(
        SIGLIP_TOWERS.format(
            normalization=get_config_path('_base_/towers/clip_normalization.py'), text_dim=32))
    monkeypatch.setitem(MODEL_CONFIGS, 'SILC-Test-Tiny-SigLIP', str(towers))
    torch.manual_seed(0)
    reference = open_clip.create_model('SILC-Test-Tiny-SigLIP').eval()
    for param in reference.parameters():
        param.add_(0.02 * torch.randn_like(param))
    save_file({
        k: v.contiguous()
        for k, v in reference.state_dict().items()
    }, str(tmp_path / 'siglip.safetensors'))
    fill_hf_cache(
        publishers.hub_cache, 'silc-test/tiny-siglip', {
            'open_clip_config.json': json.dumps(dict(model_cfg=TINY_SIGLIP_CFG)).encode(),
            'open_clip_model.safetensors': (tmp_path / 'siglip.safetensors').read_bytes(),
            'spiece.model': b'sentencepiece stand-in'
        })
    weights = resolve_pretrained('hf-hub:silc-test/tiny-siglip')
    assert weights.model == 'SILC-Test-Tiny-SigLIP'
    assert weights.tokenizer['model_file'].startswith(
        osp.join(publishers.hub_cache, 'models--silc-test--tiny-siglip'))
    model = nn.ModuleDict(build_towers(weights.config)).eval()
    load_model_checkpoint(model, 'hf-hub:silc-test/tiny-siglip')
    images = torch.randn(2, 3, 32, 32)
    tokens = torch.randint(0, 100, (3, 16))
    assert (model['image_encoder'].encode_image(images) -
            reference.encode_image(images)).abs().max() <= 1e-4
    assert (model['text_encoder'](tokens) - reference.encode_text(tokens)).abs().max() <= 1e-4
    assert torch.equal(model['contrastive_loss'].logit_bias, reference.logit_bias)


TINY_SIGLIP2_CFG = dict(
    TINY_SIGLIP_CFG,
    text_cfg=dict(
        TINY_SIGLIP_CFG['text_cfg'],
        hf_tokenizer_name='silc-test/tiny-siglip2',
        act_kwargs=dict(approximate='tanh')))
SIGLIP2_TOWERS = SIGLIP_TOWERS.replace("proj_bias=True, norm_eps=1e-6)",
                                       "proj_bias=True, norm_eps=1e-6, act='gelu_tanh')").replace(
                                           "type='SentencePieceTokenizer'",
                                           "type='GemmaTokenizer'")


@pytest.mark.slow
@torch.no_grad()
def test_siglip2_hub_repo_and_big_vision_file_by_name(publishers, monkeypatch, tmp_path):
    """SigLIP 2 names: an open_clip-format hub repository (Gemma ``tokenizer.model`` beside it)
    and a big_vision ``siglip2`` file (Gemma vocabulary from big_vision's bucket) convert
    through the SigLIP 2 converter into towers that embed as the open_clip model."""
    import json

    from open_clip import factory
    from safetensors.torch import save_file

    from silc_seg.utils import get_config_path
    from tests.test_converters.test_siglip2 import open_clip_to_big_vision
    _register_tiny_timm_siglip()
    name = 'SILC-Test-Tiny-SigLIP2'
    monkeypatch.setitem(factory._MODEL_CONFIGS, name, TINY_SIGLIP2_CFG)
    towers = tmp_path / 'tiny_siglip2.py'
    towers.write_text(
        SIGLIP2_TOWERS.format(
            normalization=get_config_path('_base_/towers/clip_normalization.py'), text_dim=32))
    monkeypatch.setitem(MODEL_CONFIGS, name, str(towers))
    assert pretrained.model_family(name) == 'siglip2'
    torch.manual_seed(0)
    reference = open_clip.create_model(name).eval()
    assert 'tanh' in str(reference.text.transformer.resblocks[0].mlp)
    for param in reference.parameters():
        param.add_(0.02 * torch.randn_like(param))
    save_file({
        k: v.contiguous()
        for k, v in reference.state_dict().items()
    }, str(tmp_path / 'siglip2.safetensors'))
    fill_hf_cache(
        publishers.hub_cache, 'silc-test/tiny-siglip2', {
            'open_clip_config.json': json.dumps(dict(model_cfg=TINY_SIGLIP2_CFG)).encode(),
            'open_clip_model.safetensors': (tmp_path / 'siglip2.safetensors').read_bytes(),
            'tokenizer.model': b'gemma stand-in'
        })
    images = torch.randn(2, 3, 32, 32)
    tokens = torch.randint(0, 100, (3, 16))

    def assert_embeds_as_reference(weights_name):
        model = nn.ModuleDict(build_towers(str(towers))).eval()
        load_model_checkpoint(model, weights_name)
        assert (model['image_encoder'].encode_image(images) -
                reference.encode_image(images)).abs().max() <= 1e-4
        assert (model['text_encoder'](tokens) - reference.encode_text(tokens)).abs().max() <= 1e-4
        assert torch.equal(model['contrastive_loss'].logit_bias, reference.logit_bias)

    weights = resolve_pretrained('hf-hub:silc-test/tiny-siglip2')
    assert weights.model == name and weights.config == str(towers)
    with open(weights.tokenizer['model_file'], 'rb') as handle:
        assert handle.read() == b'gemma stand-in'
    assert_embeds_as_reference('hf-hub:silc-test/tiny-siglip2')
    # The same weights as a big_vision file, by URL.
    np.savez(tmp_path / 'tiny2.npz', **open_clip_to_big_vision(reference))
    url = 'https://storage.googleapis.com/big_vision/siglip2/tiny2.npz'
    publishers.server.serve(url, (tmp_path / 'tiny2.npz').read_bytes())
    publishers.server.serve(pretrained.GEMMA_VOCABULARY_URL, b'gemma from big_vision')
    weights = resolve_pretrained(f'{url}#model={name}')
    with open(weights.tokenizer['model_file'], 'rb') as handle:
        assert handle.read() == b'gemma from big_vision'
    assert_embeds_as_reference(f'{url}#model={name}')
    # Released file names pick their towers; the manual command is the SigLIP 2 converter.
    assert pretrained.BIG_VISION_FILES['siglip2_b16_224.npz'] == 'ViT-B-16-SigLIP2'
    assert set(pretrained.BIG_VISION_FILES.values()) <= set(pretrained._supported_models())
    assert 'siglip2silc.py' in pretrained.converter_command('ViT-B-16-SigLIP2')
