import pytest

from tests.test_engine.fault_helpers import run, train_cmd, write_toy_config


@pytest.fixture(scope='session')
def straight(tmp_path_factory):
    """An uninterrupted 8-iteration toy run (fault_helpers.toy_config) keeping iter_2 ... iter_8:
    what an interrupted and resumed run must reproduce."""
    root = tmp_path_factory.mktemp('straight')
    config = write_toy_config(root, 'toy.py', checkpoint='max_keep_ckpts=-1')
    result = run(train_cmd(config, root / 'work'))
    assert result.returncode == 0, result.stderr[-3000:]
    return root / 'work'
