"""Every shipped training config gets the crash-safe checkpoint hook and the preemption hook:
a config that trains with mmseg's plain CheckpointHook loses its checkpoint on a kill mid-save
and ignores SIGTERM / SIGUSR1 (docs/reliability.md)."""
import os
import signal
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.hooks import Hook

from silc_seg.registry import HOOKS

REPO = Path(__file__).resolve().parents[2]
SILC = REPO / 'configs' / 'silc'
TRAINING = sorted({
    *SILC.glob('pretrain_*.py'), *SILC.glob('catseg_*coco-stuff171.py'),
    *SILC.glob('demo_*_tiny.py')
})


def test_the_training_configs_are_found():
    names = {path.name for path in TRAINING}
    assert {
        'pretrain_b16.py', 'catseg_b16_coco-stuff171.py', 'catseg_tiny_coco-stuff171.py',
        'demo_silc-maskdistill_tiny.py', 'demo_maskdistill_tiny.py'
    } <= names
    assert len(names) >= 15, sorted(names)


@pytest.mark.slow
@pytest.mark.parametrize('path', TRAINING, ids=lambda path: path.name)
def test_training_config_has_safe_checkpoint_and_preemption_hooks(path):
    cfg = Config.fromfile(str(path))
    assert cfg.get('train_cfg') and cfg.get('train_dataloader'), 'not a training config'
    assert cfg.default_hooks.checkpoint.type == 'SafeCheckpointHook', cfg.default_hooks
    assert cfg.default_hooks.preemption.type == 'PreemptionHook', cfg.default_hooks
    hooks = [hook.type for hook in cfg.get('custom_hooks', [])]
    assert 'CheckpointHook' not in hooks and 'PreemptionHook' not in hooks, hooks


@HOOKS.register_module()
class SignalSelfHook(Hook):
    """Sends SIGUSR1 to this process after iteration ``at`` (a scheduler's preemption)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.at:
            os.kill(os.getpid(), signal.SIGUSR1)


@pytest.mark.slow
def test_catseg_tiny_training_is_preempted_into_one_checkpoint(tmp_path):
    """catseg_tiny_coco-stuff171.py as shipped (the hooks of its default_hooks): SIGUSR1 after
    iteration 2 of 6 -> the step ends, iter_2.pth is written and complete, exit code 75."""
    import torch
    from mmengine.runner import Runner

    from silc_seg.engine.checkpointing import PREEMPTED_EXIT_CODE, checkpoint_damage
    from tests.test_catseg.test_configs_and_data import make_coco_stuff_layout
    root = str(tmp_path / 'coco_stuff164k')
    make_coco_stuff_layout(root)
    cfg = Config.fromfile(str(SILC / 'catseg_tiny_coco-stuff171.py'))
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = root
    cfg.train_cfg.max_iters = 6
    cfg.train_cfg.val_interval = 100
    cfg.default_hooks.checkpoint.interval = 100
    cfg.param_scheduler[0].T_max = cfg.param_scheduler[0].end = 6
    cfg.custom_hooks.append(dict(type='SignalSelfHook', at=2))
    cfg.work_dir = str(tmp_path / 'work')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops on a shared CPU (as tests/test_catseg/conftest.py)
    try:
        runner = Runner.from_cfg(cfg)
        with pytest.raises(SystemExit) as stopped:
            runner.train()
    finally:
        torch.set_num_threads(threads)
    assert stopped.value.code == PREEMPTED_EXIT_CODE and runner.iter == 2
    saved = sorted(p.name for p in (tmp_path / 'work').glob('iter_*.pth'))
    assert saved == ['iter_2.pth']
    assert checkpoint_damage(str(tmp_path / 'work' / 'iter_2.pth')) is None
