"""The README's plug-in steps, as written: an mmseg config with ``custom_imports=['silc_seg']``
trained, resumed and tested with the ``tools/`` that ship inside the installed mmseg package, on
torch>=2.6 (weights-only loading), with a tiny SILC tower on a generated ADE20K layout."""
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from silc_seg.models.backbones import SILCVisionTransformer
from silc_seg.utils import torch_load_weights_only
from tests.test_zero_shot.tiny_datasets import make_ade20k

REPO = Path(__file__).resolve().parents[2]
TINY_TOWER = dict(arch='tiny', patch_size=8, img_size=64, out_indices=(1, 3, 4, 5))

# CPU-sized version of the README config: the README block is its base, unchanged.
CPU_OVERRIDES = textwrap.dedent('''
    _base_ = ['./readme_config.py']
    crop_size = (64, 64)
    model = dict(
        data_preprocessor=dict(size=crop_size),
        backbone=dict(arch='tiny', patch_size=8, img_size=64, out_indices=(1, 3, 4, 5)),
        neck=dict(in_channels=[192] * 4, out_channels=32),
        decode_head=dict(in_channels=[32] * 4, channels=32, dropout_ratio=0.0),
        auxiliary_head=dict(in_channels=32, channels=16, dropout_ratio=0.0))
    train_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', reduce_zero_label=True),
        dict(type='RandomResize', scale=(128, 64), ratio_range=(0.5, 2.0), keep_ratio=True),
        dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PhotoMetricDistortion'),
        dict(type='PackSegInputs'),
    ]
    test_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(128, 64), keep_ratio=True),
        dict(type='LoadAnnotations', reduce_zero_label=True),
        dict(type='PackSegInputs'),
    ]
    data = dict(data_root='ADEChallengeData2016',
                data_prefix=dict(img_path='images/validation',
                                 seg_map_path='annotations/validation'))
    train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                            dataset=dict(pipeline=train_pipeline, **data))
    test_dataloader = dict(num_workers=0, persistent_workers=False,
                           dataset=dict(pipeline=test_pipeline, **data))
    val_dataloader = test_dataloader
    train_cfg = dict(max_iters=4, val_interval=100)
    default_hooks = dict(checkpoint=dict(interval=2), logger=dict(interval=1))
    randomness = dict(seed=0, deterministic=True)
''')


def readme_block(marker):
    """The fenced block that follows ``marker`` in the README."""
    text = (REPO / 'README.md').read_text()
    after = text[text.index(marker):]
    block = re.search(r'```\w*\n(.*?)```', after, re.S).group(1)
    return textwrap.dedent(block)


def write_tiny_silc_checkpoint(path):
    """A SILC-style runner checkpoint: image_encoder.* weights and an MMEngine message hub."""
    torch.manual_seed(0)
    tower = SILCVisionTransformer(**TINY_TOWER)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        dict(
            state_dict={
                f'image_encoder.{k}': v
                for k, v in tower.state_dict().items()
            },
            meta=dict(iter=200, seed=np.int64(0)),
            message_hub=dict(
                log_scalars={'train/loss': HistoryBuffer([2.0, 1.5], [1, 1])},
                runtime_info=dict(iter=200),
                resumed_keys=dict(iter=True))), path)


@pytest.mark.slow
def test_readme_plugin_steps_with_mmseg_tools(tmp_path):
    make_ade20k(str(tmp_path / 'ADEChallengeData2016'), num_images=4)
    (tmp_path / 'readme_config.py').write_text(readme_block('<!-- plug-in config'))
    (tmp_path / 'my_silc_upernet.py').write_text(CPU_OVERRIDES)
    write_tiny_silc_checkpoint(tmp_path / 'work_dirs' / 'silc_b16.pth')
    commands = readme_block('<!-- plug-in commands').strip().splitlines()
    assert len(commands) == 4 and commands[1].endswith('--work-dir work_dirs/my_silc_upernet')
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''),
        PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ['PATH'])

    def run(*lines):
        result = subprocess.run(['bash', '-ec', '\n'.join(lines)],
                                cwd=tmp_path,
                                env=env,
                                capture_output=True,
                                text=True,
                                timeout=600)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:]
        assert 'weights_only' not in output and 'Weights only load failed' not in output
        return output

    # Step 3, first line: train 4 iterations (checkpoints at 2 and 4), the tower initialized
    # from the SILC checkpoint through init_cfg.
    straight = run(commands[0], commands[1])
    assert 'Loads checkpoint by local backend from path: work_dirs/silc_b16.pth' in straight
    work_dir = tmp_path / 'work_dirs' / 'my_silc_upernet'
    shutil.move(str(work_dir), str(tmp_path / 'work_dirs' / 'straight'))
    reference = torch_load_weights_only(str(tmp_path / 'work_dirs' / 'straight' / 'iter_4.pth'))

    # Step 3, second line: a work dir whose latest checkpoint is the half-way one of that run
    # (an ordinary MMEngine checkpoint: mmseg's tool adds no hook of ours) is resumed.
    work_dir.mkdir()
    shutil.copy(tmp_path / 'work_dirs' / 'straight' / 'iter_2.pth', work_dir / 'iter_2.pth')
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_2.pth'))
    resumed = run(commands[0], commands[2])
    assert 'resumed epoch: 0, iter: 2' in resumed
    logged_iters = [int(i) for i in re.findall(r'Iter\(train\) \[\s*(\d+)/4\]', resumed)]
    assert logged_iters == [3, 4], logged_iters
    final = torch_load_weights_only(str(work_dir / 'iter_4.pth'))
    assert final['meta']['iter'] == 4
    assert final['state_dict'].keys() == reference['state_dict'].keys()
    for key, value in reference['state_dict'].items():
        torch.testing.assert_close(final['state_dict'][key], value, rtol=0, atol=1e-6, msg=key)

    # Step 3, third line: mmseg's test tool loads the latest checkpoint (load_from) and evaluates.
    tested = run(commands[0], commands[3])
    assert re.search(r'mIoU: [\d.]+', tested), tested[-3000:]
