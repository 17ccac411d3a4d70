"""The code style of setup.cfg holds everywhere (one line length, no unused imports, no stray
blank lines): flake8 over the package, tools, configs and tests reports nothing."""
import os.path as osp
import subprocess
import sys

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.slow
def test_flake8_reports_nothing():
    result = subprocess.run(
        [sys.executable, '-m', 'flake8', 'silc_seg', 'tools', 'configs', 'tests', 'setup.py'],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True)
    assert result.returncode == 0, result.stdout + result.stderr
