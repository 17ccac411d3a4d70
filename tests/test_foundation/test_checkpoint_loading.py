"""One checkpoint-loading path (``load_model_checkpoint``) for init_model, tools/test.py and
tools/demo.py: keys revised as MMEngine does, missing keys and wrong shapes are errors that name
the keys, both shapes and the config the checkpoint fits."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.runner.checkpoint import _load_checkpoint
from PIL import Image

from silc_seg.apis import init_model
from silc_seg.utils import CheckpointMismatchError, load_model_checkpoint
from tests.test_zero_shot.test_oracle import REPO, write_config, write_oracle_checkpoint
from tests.test_zero_shot.tiny_datasets import class_palette, make_ade20k


class TwoTowers(nn.Module):

    def __init__(self, width=8):
        super().__init__()
        self.image_encoder = nn.Linear(width, 4)
        self.text_encoder = nn.Embedding(10, width)


def test_loads_ddp_checkpoint_and_skips_unused_keys(tmp_path):
    source = TwoTowers()
    state = {f'module.{k}': v for k, v in source.state_dict().items()}
    state['module.teacher.weight'] = torch.ones(3)
    torch.save(
        dict(state_dict=state, meta=dict(dataset_meta=dict(classes=('a', 'b')))),
        tmp_path / 'ddp.pth')
    target = TwoTowers()
    checkpoint = load_model_checkpoint(target, str(tmp_path / 'ddp.pth'))
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value, rtol=0, atol=0)
    assert target.dataset_meta == dict(classes=('a', 'b'))
    assert 'module.teacher.weight' in checkpoint['state_dict']


def test_wrong_shapes_are_an_error_naming_keys_shapes_and_config(tmp_path):
    """A checkpoint of another tower size is refused (a check of key names alone would load it
    with a warning per tensor and keep the random towers)."""
    wide = TwoTowers(width=16).state_dict()
    torch.save(
        dict(
            state_dict=wide,
            meta=dict(model='ViT-B-16', config='configs/_base_/models/silc_vit-b16.py')),
        tmp_path / 'wide.pth')
    target = TwoTowers(width=8)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as error:
        load_model_checkpoint(target, str(tmp_path / 'wide.pth'))
    message = str(error.value)
    assert '2 tensor(s) have another shape' in message
    assert 'image_encoder.weight (4, 16) in the checkpoint vs (4, 8) in the model' in message
    assert 'text_encoder.weight (10, 16) in the checkpoint vs (10, 8) in the model' in message
    # The checkpoint records the towers it was made for: the message names that config.
    assert ('converted for the towers of configs/_base_/models/silc_vit-b16.py (ViT-B-16)'
            in message)
    for key, value in target.state_dict().items():  # nothing was loaded
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    # Missing keys are never allowed to hide a shape mismatch.
    with pytest.raises(CheckpointMismatchError, match='another shape'):
        load_model_checkpoint(target, str(tmp_path / 'wide.pth'), allow_missing=True)


def test_runner_checkpoint_names_its_training_config(tmp_path):
    torch.save(
        dict(
            state_dict=TwoTowers(width=16).state_dict(),
            meta=dict(cfg='model = dict()', experiment_name='zs_demo_20260101_000000')),
        tmp_path / 'run.pth')
    with pytest.raises(
            CheckpointMismatchError,
            match=r"run zs_demo_20260101_000000.*checkpoint\['meta'\]\['cfg'\]"):
        load_model_checkpoint(TwoTowers(width=8), str(tmp_path / 'run.pth'))


def test_missing_keys_listed(tmp_path):
    state = TwoTowers().state_dict()
    del state['text_encoder.weight']
    torch.save(state, tmp_path / 'partial.pth')
    with pytest.raises(CheckpointMismatchError, match=r'1 missing key\(s\): text_encoder.weight'):
        load_model_checkpoint(TwoTowers(), str(tmp_path / 'partial.pth'))
    model = TwoTowers()
    load_model_checkpoint(model, str(tmp_path / 'partial.pth'), allow_missing=True)
    torch.testing.assert_close(model.image_encoder.weight, state['image_encoder.weight'])


def test_safetensors_metadata_is_the_checkpoint_meta(tmp_path):
    from safetensors.torch import save_file
    save_file(
        TwoTowers(width=16).state_dict(),
        str(tmp_path / 'w.safetensors'),
        metadata=dict(model='ViT-B-16', config='configs/_base_/models/silc_vit-b16.py'))
    checkpoint = _load_checkpoint(str(tmp_path / 'w.safetensors'))
    assert checkpoint['meta']['model'] == 'ViT-B-16'
    with pytest.raises(CheckpointMismatchError, match='converted for the towers'):
        load_model_checkpoint(TwoTowers(width=8), str(tmp_path / 'w.safetensors'))


@pytest.fixture(scope='module')
def oracle_setup(tmp_path_factory):
    """The oracle zero-shot config on a generated ADE20K copy, a fitting checkpoint and one
    whose image-tower class embeddings have another width."""
    tmp_path = tmp_path_factory.mktemp('oracle')
    data_root = str(tmp_path / 'ADEChallengeData2016')
    palette = make_ade20k(data_root)
    config = write_config(tmp_path, 'zs_ade150.py', data_root, palette)
    good = str(tmp_path / 'oracle.pth')
    from mmseg.datasets import ADE20KDataset
    write_oracle_checkpoint(config, ADE20KDataset.METAINFO['classes'], good, shuffle=False)
    state = torch.load(good, weights_only=True)['state_dict']
    state['image_encoder.class_embeddings'] = torch.zeros(
        state['image_encoder.class_embeddings'].shape[0], 128)
    wrong = str(tmp_path / 'wrong.pth')
    torch.save(
        dict(
            state_dict=state,
            meta=dict(model='ViT-B-16', config='configs/_base_/models/openclip_vit-b-16.py')),
        wrong)
    return tmp_path, config, good, wrong


def run_tool(*args):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, *args],
                          cwd=REPO,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)


@pytest.mark.slow
def test_init_model_refuses_wrong_shapes(oracle_setup):
    _, config, good, wrong = oracle_setup
    model = init_model(config, good)
    assert model.image_encoder.class_embeddings.shape[1] == 256
    with pytest.raises(
            CheckpointMismatchError,
            match=r'image_encoder.class_embeddings \(150, 128\) in the checkpoint vs '
            r'\(150, 256\) in the model'):
        init_model(config, wrong)


@pytest.mark.slow
def test_test_tool_stops_on_wrong_shapes(oracle_setup):
    tmp_path, config, _, wrong = oracle_setup
    result = run_tool('tools/test.py', config, wrong, '--work-dir', str(tmp_path / 'work'))
    assert result.returncode != 0
    assert 'CheckpointMismatchError' in result.stderr
    assert ('image_encoder.class_embeddings (150, 128) in the checkpoint vs (150, 256) in the '
            'model') in result.stderr
    assert 'openclip_vit-b-16.py (ViT-B-16)' in result.stderr
    assert 'mIoU:' not in result.stdout + result.stderr  # nothing was evaluated


@pytest.mark.slow
def test_demo_tool_stops_on_wrong_shapes(oracle_setup):
    tmp_path, config, _, wrong = oracle_setup
    Image.fromarray(np.full((40, 50, 3),
                            class_palette(3)[1], np.uint8)).save(tmp_path / 'photo.png')
    out = tmp_path / 'overlay.png'
    result = run_tool('tools/demo.py', str(tmp_path / 'photo.png'), '--classes', 'wall,floor',
                      '--config', config, '--checkpoint', wrong, '--out', str(out))
    assert result.returncode != 0
    assert 'image_encoder.class_embeddings (150, 128) in the checkpoint' in result.stderr
    assert not out.exists()


def test_position_embeddings_of_another_resolution_load_resized(tmp_path):
    """A ViT's pos_embed at another grid is adapted on load, not a mismatch; its width is."""
    from silc_seg.models.backbones import SILCVisionTransformer

    class Segmentor(nn.Module):

        def __init__(self, img_size, width=None):
            super().__init__()
            self.image_encoder = SILCVisionTransformer(
                arch='tiny', patch_size=8, img_size=img_size, width=width, output_dim=None)

    torch.save(Segmentor(32).state_dict(), tmp_path / 'grid4.pth')
    model = Segmentor(64)
    load_model_checkpoint(model, str(tmp_path / 'grid4.pth'))
    assert model.image_encoder.pos_embed.shape == (1, 65, 192)
    torch.save(Segmentor(32, width=96).state_dict(), tmp_path / 'narrow.pth')
    with pytest.raises(CheckpointMismatchError, match=r'image_encoder.pos_embed \(1, 17, 96\)'):
        load_model_checkpoint(Segmentor(64), str(tmp_path / 'narrow.pth'))


@pytest.mark.slow
def test_pretraining_checkpoint_meta_without_classes_keeps_the_vocabulary(tmp_path):
    """A pretraining checkpoint's dataset_meta (image-text data, no class names) is not handed
    to a segmentor, which keeps its own vocabulary (make demo: zs_demo.py on the demo
    pretraining checkpoint)."""
    cfg = 'configs/silc/zs_demo.py'
    model = init_model(cfg)
    state = {
        f'{name}.{key}': value
        for name in ('image_encoder', 'text_encoder')
        for key, value in getattr(model, name).state_dict().items()
    }
    ckpt = tmp_path / 'pretrain.pth'
    torch.save(dict(state_dict=state, meta=dict(dataset_meta=dict())), ckpt)
    loaded = init_model(cfg, str(ckpt))
    torch.testing.assert_close(loaded.image_encoder.proj.weight, model.image_encoder.proj.weight)
    with_classes = tmp_path / 'seg.pth'
    torch.save(
        dict(state_dict=state, meta=dict(dataset_meta=dict(classes=('a', 'b')))), with_classes)
    assert tuple(init_model(cfg, str(with_classes)).dataset_meta['classes']) == ('a', 'b')
