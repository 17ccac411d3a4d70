"""`import silc_seg` registers modules and installs the weights-only checkpoint loader, and
changes nothing else in the process (docs/design.md, "Import effects")."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent('''
    import logging, os, sys, warnings
    import torch, mmengine.runner, mmseg.models, mmpretrain.models, open_clip  # noqa: E401
    from mmengine.runner.checkpoint import CheckpointLoader

    def state():
        return dict(
            filters=list(warnings.filters), environ=dict(os.environ),
            loggers={name: (getattr(logger, 'level', None), list(getattr(logger, 'handlers', [])))
                     for name, logger in logging.Logger.manager.loggerDict.items()},
            root=(logging.root.level, list(logging.root.handlers)),
            torch=(torch.get_num_threads(), torch.get_default_dtype(), torch.is_grad_enabled(),
                   torch.are_deterministic_algorithms_enabled(),
                   torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision()),
            loaders=dict(CheckpointLoader._schemes))

    before = state()
    import silc_seg  # noqa: F401
    after = state()
    changed = sorted(key for key in before if before[key] != after[key])
    # New loggers may appear (a module's getLogger); existing ones must keep level and handlers.
    if 'loggers' in changed and all(after['loggers'][name] == value
                                    for name, value in before['loggers'].items()):
        changed.remove('loggers')
    print(changed)
    print(after['loaders'][''].__module__, after['loaders'][''].__name__)
''')


@pytest.mark.slow
def test_import_changes_only_the_checkpoint_loader():
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    result = subprocess.run([sys.executable, '-c', CHILD],
                            cwd=REPO,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    changed, loader = result.stdout.strip().splitlines()[-2:]
    assert changed == "['loaders']", result.stdout
    assert loader == 'silc_seg.utils.checkpoint load_from_local'
