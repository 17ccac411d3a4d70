"""Fixtures of the weights-name tests: offline stand-ins of the publishers."""
from types import SimpleNamespace

import pytest

from silc_seg.hub import pretrained
from .stand_ins import (TINY, TINY_HUB_REPO, StandInServer, fill_hf_cache, open_clip_config_json,
                        register_tiny_architecture, sha256, state_dict_bytes, tiny_clip)


@pytest.fixture
def publishers(monkeypatch, tmp_path):
    """OpenAI / OpenCLIP release URLs served on 127.0.0.1, a pre-filled offline hub cache and
    every cache (open_clip's ~/.cache/clip, silc-seg's) inside tmp_path."""
    from huggingface_hub import constants
    from open_clip.pretrained import _pcfg
    from safetensors.torch import save_file
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    monkeypatch.setenv('SILC_SEG_CACHE', str(tmp_path / 'silc-cache'))
    hub_cache = str(tmp_path / 'hf-home' / 'hub')
    monkeypatch.setattr(constants, 'HF_HUB_CACHE', hub_cache)
    monkeypatch.setattr(constants, 'HF_HUB_OFFLINE', True)
    models = dict(
        openai=tiny_clip(quick_gelu=True, seed=0),
        laion=tiny_clip(False, seed=1),
        hub=tiny_clip(False, seed=2))
    openai = state_dict_bytes(models['openai'], str(tmp_path / 'openai.pt'))
    laion = state_dict_bytes(models['laion'], str(tmp_path / 'laion.pt'))
    urls = dict(
        openai=f'https://openaipublic.azureedge.net/clip/models/{sha256(openai)}/{TINY}.pt',
        laion='https://github.com/mlfoundations/open_clip/releases/download/v0.2-weights/'
        f'silc_test_tiny-laion-{sha256(laion)[:8]}.pt')
    save_file({
        k: v.contiguous()
        for k, v in models['hub'].state_dict().items()
    }, str(tmp_path / 'hub.safetensors'))
    fill_hf_cache(
        hub_cache, TINY_HUB_REPO, {
            'open_clip_config.json': open_clip_config_json(quick_gelu=False),
            'open_clip_model.safetensors': (tmp_path / 'hub.safetensors').read_bytes()
        })
    table = dict(
        openai=_pcfg(url=urls['openai'], hf_hub='timm/silc-test-tiny.openai/', quick_gelu=True),
        laion=_pcfg(url=urls['laion']),
        hub=_pcfg(hf_hub=f'{TINY_HUB_REPO}/'))
    register_tiny_architecture(monkeypatch.setitem, tmp_path, table)
    with StandInServer() as server:
        monkeypatch.setenv('SILC_SEG_DOWNLOAD_BASE_URL', server.url)
        server.serve(urls['openai'], openai)
        server.serve(urls['laion'], laion)
        yield SimpleNamespace(
            server=server,
            hub_cache=hub_cache,
            models=models,
            urls=urls,
            home=str(tmp_path / 'home'))


@pytest.fixture
def conversions(monkeypatch):
    """Counts the conversions of open_clip files."""
    calls = []
    convert = pretrained.FAMILY_CONVERTERS[('clip', 'open_clip')]

    def counting(path):
        calls.append(path)
        return convert(path)

    monkeypatch.setitem(pretrained.FAMILY_CONVERTERS, ('clip', 'open_clip'), counting)
    return calls
