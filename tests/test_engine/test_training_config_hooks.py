"""Every shipped training config gets the crash-safe checkpoint hook and the preemption hook:
a config that trains with mmseg's plain CheckpointHook loses its checkpoint on a kill mid-save
and ignores SIGTERM / SIGUSR1 (docs/reliability.md)."""
from pathlib import Path

import pytest
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[2]
SILC = REPO / 'configs' / 'silc'
TRAINING = sorted({*SILC.glob('pretrain_*.py'), *SILC.glob('catseg_*coco-stuff171.py'),
                   *SILC.glob('demo_*_tiny.py')})


def test_the_training_configs_are_found():
    names = {path.name for path in TRAINING}
    assert {'pretrain_b16.py', 'catseg_b16_coco-stuff171.py', 'catseg_tiny_coco-stuff171.py',
            'demo_silc-maskdistill_tiny.py', 'demo_maskdistill_tiny.py'} <= names
    assert len(names) >= 15, sorted(names)


@pytest.mark.parametrize('path', TRAINING, ids=lambda path: path.name)
def test_training_config_has_safe_checkpoint_and_preemption_hooks(path):
    cfg = Config.fromfile(str(path))
    assert cfg.get('train_cfg') and cfg.get('train_dataloader'), 'not a training config'
    assert cfg.default_hooks.checkpoint.type == 'SafeCheckpointHook', cfg.default_hooks
    assert cfg.default_hooks.preemption.type == 'PreemptionHook', cfg.default_hooks
    hooks = [hook.type for hook in cfg.get('custom_hooks', [])]
    assert 'CheckpointHook' not in hooks and 'PreemptionHook' not in hooks, hooks
