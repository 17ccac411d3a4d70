"""End to end through tools/test.py on tiny ADE20K / PASCAL Context-59 copies: an oracle image
tower whose patch embeddings equal the text embedding of each patch's true class scores mIoU 100
with the default protocol (short side 336, 224/112 sliding windows); a shuffled oracle does not.
"""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.datasets import ADE20KDataset, PascalContextDataset59

from silc_seg.registry import MODELS
from . import toy_towers  # noqa: F401
from .tiny_datasets import make_ade20k, make_pascal_context59

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def write_config(tmp_path, dataset_cfg, data_root, palette):
    config = tmp_path / 'oracle_cfg.py'
    config.write_text(f"""
_base_ = ['{REPO}/configs/silc/zs_runtime.py', '{REPO}/configs/_base_/datasets/{dataset_cfg}']
custom_imports = dict(imports=['silc_seg', 'tests.test_zero_shot.toy_towers'],
                      allow_failed_imports=False)
test_dataloader = dict(num_workers=0, dataset=dict(data_root='{data_root}'))
model = dict(
    type='ZeroShotSegmentor',
    image_encoder=dict(
        type='silc_test.OracleImageEncoder', palette={palette}, embed_dim=256, patch_size=16),
    # One random embedding per class name (no hash collision among the ADE-150 and PC-59
    # names at this vocabulary size), nearly orthogonal in 256 dimensions.
    text_encoder=dict(type='silc_test.ToyTextEncoder', embed_dim=256, vocab_size=16384),
    tokenizer=dict(type='silc_test.ToyWordTokenizer', vocab_size=16384, whole_text=True),
    # Identity normalization: the oracle compares raw RGB colours with its palette.
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[0, 0, 0], std=[1, 1, 1],
                           bgr_to_rgb=True),
    templates=['{{}}'],
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(112, 112), window_batch_size=8))
""")
    return str(config)


def write_oracle_checkpoint(config, classes, path, shuffle):
    """Text tower weights + oracle class embeddings = the text embeddings of the classes."""
    torch.manual_seed(0)
    init_default_scope('mmseg')
    model = MODELS.build(Config.fromfile(config).model)
    model.dataset_meta = dict(classes=classes)
    embeddings, _ = model.text_embeddings()
    if shuffle:
        embeddings = embeddings.roll(1, dims=0)
    model.image_encoder.class_embeddings.data.copy_(embeddings)
    torch.save(dict(state_dict=model.state_dict()), path)


def run_test_tool(config, checkpoint, work_dir, *extra):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    result = subprocess.run(
        [sys.executable, 'tools/test.py', config, checkpoint, '--work-dir', work_dir, *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return float(re.findall(r'mIoU: ([\d.]+)', output)[-1])


@pytest.mark.slow
def test_oracle_ade20k_full_test_tool_path(tmp_path):
    data_root = str(tmp_path / 'ADEChallengeData2016')
    palette = make_ade20k(data_root)
    config = write_config(tmp_path, 'zs_ade150.py', data_root, palette)
    checkpoint = str(tmp_path / 'oracle.pth')
    write_oracle_checkpoint(config, ADE20KDataset.METAINFO['classes'], checkpoint, shuffle=False)
    show_dir = str(tmp_path / 'overlays')
    # A config interval above the number of images must not stop --show-dir saving each one.
    assert run_test_tool(config, checkpoint, str(tmp_path / 'work'), '--show-dir', show_dir,
                         '--cfg-options', 'default_hooks.visualization.interval=50') == 100.0
    overlays = sorted(f for _, _, files in os.walk(show_dir) for f in files if f.endswith('.png'))
    # Straight into --show-dir, named after the images (SegOverlayHook).
    assert overlays == ['ADE_val_00000000.png', 'ADE_val_00000001.png']
    assert sorted(os.listdir(show_dir))[:2] == overlays


@pytest.mark.slow
def test_oracle_and_shuffled_oracle_pascal_context59(tmp_path):
    data_root = str(tmp_path / 'VOCdevkit' / 'VOC2010')
    palette = make_pascal_context59(data_root)
    config = write_config(tmp_path, 'zs_pc59.py', data_root, palette)
    classes = PascalContextDataset59.METAINFO['classes']
    oracle, shuffled = str(tmp_path / 'oracle.pth'), str(tmp_path / 'shuffled.pth')
    write_oracle_checkpoint(config, classes, oracle, shuffle=False)
    write_oracle_checkpoint(config, classes, shuffled, shuffle=True)
    assert run_test_tool(config, oracle, str(tmp_path / 'w1')) == 100.0
    assert run_test_tool(config, shuffled, str(tmp_path / 'w2')) < 1.0
