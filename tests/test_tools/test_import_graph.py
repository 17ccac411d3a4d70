"""The import graph: tools on top, nothing imports from tools/ (analysis_tools/import_graph.py)."""
import subprocess
import sys
from pathlib import Path

import pytest

from silc_seg.utils import import_file_as_module

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / 'tools' / 'analysis_tools' / 'import_graph.py'


def load_script():
    return import_file_as_module(str(SCRIPT), 'import_graph')


@pytest.mark.slow
def test_nothing_imports_from_tools_and_tools_are_on_top():
    result = subprocess.run([sys.executable, str(SCRIPT), '--check'],
                            cwd=ROOT,
                            capture_output=True,
                            text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].endswith('tests, tools') and lines[0].startswith('layer ')
    assert 'nothing imports from tools/' in lines
    assert not any(line.strip().startswith(('silc_seg', 'silc_seg.')) and '-> tools' in line
                   for line in lines)


def test_a_stand_in_package_under_tools_is_found(tmp_path):
    graph = load_script()
    files = {
        'silc_seg/__init__.py': 'from . import datasets\n',
        'silc_seg/datasets/__init__.py': 'import cv2\nfrom ..utils import helper\n',
        'silc_seg/utils/__init__.py': '',
        'silc_seg/utils/helper.py': 'import numpy\n',
        'tools/shims/cv2/__init__.py': '',
        'tools/run.py': 'import sibling\nimport silc_seg\n',
        'tools/sibling.py': '',
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    subprocess.run(['git', 'init', '-q'], cwd=tmp_path, check=True)
    edges, into_tools = graph.build_graph(tmp_path)
    assert sorted(into_tools) == [
        'silc_seg/datasets/__init__.py:1 imports cv2 from tools/shims/cv2/__init__.py',
        'tools/run.py:1 imports sibling from tools/sibling.py'
    ]
    assert edges[('silc_seg.datasets', 'silc_seg.utils')] == 2  # the package and helper.py
    assert edges[('silc_seg.datasets', 'tools')] == 1
    # tools -> silc_seg -> datasets -> tools is a cycle: the three share the top layer.
    assert [sorted(layer)
            for layer in graph.layers(edges)] == [['silc_seg.utils'],
                                                  ['silc_seg', 'silc_seg.datasets', 'tools']]
    (tmp_path / 'silc_seg/datasets/__init__.py').write_text('from ..utils import helper\n')
    edges, into_tools = graph.build_graph(tmp_path)
    assert [sorted(layer) for layer in graph.layers(edges)] == [['silc_seg.utils'],
                                                                ['silc_seg.datasets'],
                                                                ['silc_seg'], ['tools']]
