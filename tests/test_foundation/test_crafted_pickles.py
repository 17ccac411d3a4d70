"""Crafted pickles against every checkpoint-loading path: nothing in them runs, and the refusal
says what was refused without suggesting to turn the protection off.

Each payload would create a marker file if any of its code ran. Loading paths: silc-seg's
restricted loader, MMEngine's CheckpointLoader (``load_from``, ``init_cfg``, ``--resume``),
``load_model_checkpoint`` and ``init_model``, ``tools/test.py`` and ``tools/demo.py``, and the
converters (PyTorch files, OpenAI TorchScript archives, big_vision ``.npz``)."""
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint
from PIL import Image

from silc_seg.apis import init_model
from silc_seg.converters import load_openclip_checkpoint
from silc_seg.models.backbones import SILCVisionTransformer
from silc_seg.utils import CheckpointRefusedError, load_model_checkpoint, torch_load_weights_only
from tests.test_converters.helpers import load_tool

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Reduce:
    """Pickles as ``function(*args)``: what a malicious checkpoint asks the unpickler to call."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def payloads(marker):
    touch = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    return {
        'os.system': Reduce(os.system, f'touch {marker}'),
        'builtins.eval': Reduce(eval, touch),
        'builtins.exec': Reduce(exec, touch),
        # getattr chains towards a module's globals, through the one admitted class.
        'getattr chain': Reduce(getattr, Reduce(getattr, HistoryBuffer, '__init__'),
                                '__globals__'),
        'getattr of another attribute': Reduce(getattr, HistoryBuffer, 'register_statistics'),
        'object array': np.array([Reduce(os.system, f'touch {marker}')], dtype=object),
        'history buffer carrying code': {
            'log_scalars': {
                'loss': Reduce(HistoryBuffer, [1.0], [1], Reduce(eval, touch))
            }
        },
    }


def write_payload(path, payload, how):
    checkpoint = {'state_dict': {'w': torch.ones(1)}, 'message_hub': payload}
    if how == 'zip':
        torch.save(checkpoint, path)
    elif how == 'legacy':
        torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    else:  # a bare pickle, as pickle.dump writes it
        with open(path, 'wb') as f:
            pickle.dump(checkpoint, f, protocol=2)


LOADERS = {
    'restricted loader':
    lambda path: torch_load_weights_only(path),
    'MMEngine CheckpointLoader (load_from, init_cfg, resume)':
    lambda path: _load_checkpoint(path),
    'load_model_checkpoint (tools)':
    lambda path: load_model_checkpoint(torch.nn.Linear(1, 1), path),
    'init_model':
    lambda path: init_model(
        Config(
            dict(
                model=dict(
                    type='SILCVisionTransformer',
                    arch='tiny',
                    patch_size=8,
                    img_size=16,
                    output_dim=None))), path),
    'openclip converter':
    lambda path: load_openclip_checkpoint(path),
}


@pytest.mark.slow
@pytest.mark.parametrize('how', ['zip', 'legacy', 'pickle'])
@pytest.mark.parametrize('loader', sorted(LOADERS))
def test_nothing_executes_on_any_loading_path(tmp_path, loader, how):
    marker = tmp_path / 'executed'
    for name, payload in payloads(marker).items():
        path = str(tmp_path / f'{name.replace(" ", "_")}.pth')
        write_payload(path, payload, how)
        with pytest.raises(CheckpointRefusedError) as error:
            LOADERS[loader](path)
        assert not marker.exists(), f'{name} ran through {loader}'
        message = str(error.value)
        assert message.startswith(f'Refused to load {path}: the file contains'), message
        assert 'weights_only' not in message and 'Weights only' not in message
        assert error.value.__suppress_context__  # torch's advice is not chained either


def test_refusals_name_what_was_asked_for(tmp_path):
    marker = tmp_path / 'executed'
    expected = {
        'os.system': 'a reference to the Python object posix.system',
        'builtins.eval': 'a reference to the Python object builtins.eval',
        'getattr chain': "a look-up of the attribute '__init__' of <class "
        "'mmengine.logging.history_buffer.HistoryBuffer'>",
        'object array': "an object of type <class 'numpy.dtypes.ObjectDType'>",
    }
    for name, reason in expected.items():
        path = str(tmp_path / 'payload.pth')
        write_payload(path, payloads(marker)[name], 'zip')
        with pytest.raises(CheckpointRefusedError, match='the file contains ' + reason):
            torch_load_weights_only(path)


def test_ordinary_checkpoints_still_load(tmp_path):
    tower = SILCVisionTransformer(arch='tiny', patch_size=8, img_size=16, output_dim=None)
    torch.save(
        {
            'state_dict': tower.state_dict(),
            'meta': {
                'seed': np.int64(0)
            },
            'message_hub': {
                'log_scalars': {
                    'loss': HistoryBuffer([1.0, 2.0], [1, 1])
                }
            }
        }, tmp_path / 'ok.pth')
    model = init_model(
        Config(
            dict(
                model=dict(
                    type='SILCVisionTransformer',
                    arch='tiny',
                    patch_size=8,
                    img_size=16,
                    output_dim=None))), str(tmp_path / 'ok.pth'))
    torch.testing.assert_close(model.pos_embed, tower.pos_embed)


def test_torchscript_archive_with_code_in_its_constants(tmp_path):
    """The converter hands archives with ``constants.pkl`` to torch.jit.load, whose unpickler
    only builds TorchScript values."""
    marker = tmp_path / 'executed'
    path = tmp_path / 'ViT-B-16.pt'
    evil = pickle.dumps(Reduce(os.system, f'touch {marker}'), protocol=2)
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('archive/constants.pkl', evil)
        archive.writestr('archive/data.pkl', evil)
        archive.writestr('archive/version', '3\n')
    with pytest.raises(Exception):
        load_openclip_checkpoint(str(path))
    assert not marker.exists()


def test_big_vision_npz_with_pickled_objects(tmp_path):
    marker = tmp_path / 'executed'
    path = tmp_path / 'webli.npz'
    np.savez(
        path, **{
            'params/img/embedding/kernel':
            np.array([Reduce(os.system, f'touch {marker}')], dtype=object)
        })
    with pytest.raises(ValueError, match='allow_pickle=False'):
        load_tool('bigvision2silc').main(
            [str(path), str(tmp_path / 'out.safetensors'), '--model', 'ViT-B-16-SigLIP'])
    assert not marker.exists()


def run_tool(tmp_path, *args):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, *args],
                          cwd=tmp_path,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize('tool', ['test', 'demo', 'openclip2silc'])
def test_tools_refuse_without_suggesting_to_turn_the_protection_off(tmp_path, tool):
    marker = tmp_path / 'executed'
    checkpoint = str(tmp_path / 'evil.pth')
    write_payload(checkpoint, payloads(marker)['os.system'], 'zip')
    config = os.path.join(REPO, 'configs', 'silc', 'zs_demo.py')
    if tool == 'test':
        # A valid demo layout where the config looks (cwd), so the data check passes first.
        for folder in ('img_dir', 'ann_dir'):
            os.makedirs(tmp_path / 'data' / 'demo' / 'seg' / folder / 'val')
        Image.fromarray(np.zeros(
            (32, 32, 3),
            np.uint8)).save(tmp_path / 'data' / 'demo' / 'seg' / 'img_dir' / 'val' / 'a.png')
        Image.fromarray(np.zeros(
            (32, 32),
            np.uint8)).save(tmp_path / 'data' / 'demo' / 'seg' / 'ann_dir' / 'val' / 'a.png')
        args = [os.path.join(REPO, 'tools', 'test.py'), config, checkpoint]
    elif tool == 'demo':
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / 'photo.png')
        args = [
            os.path.join(REPO, 'tools', 'demo.py'),
            str(tmp_path / 'photo.png'), '--classes', 'a,b', '--config', config, '--checkpoint',
            checkpoint, '--out',
            str(tmp_path / 'out.png')
        ]
    else:
        args = [
            os.path.join(REPO, 'tools', 'model_converters', 'openclip2silc.py'), checkpoint,
            str(tmp_path / 'out.safetensors'), '--model', 'ViT-B-16'
        ]
    result = run_tool(tmp_path, *args)
    assert result.returncode != 0
    assert not marker.exists()
    assert 'Refused to load' in result.stderr and 'posix.system' in result.stderr
    output = result.stdout + result.stderr
    assert 'weights_only=False' not in output and 'Weights only load failed' not in output
