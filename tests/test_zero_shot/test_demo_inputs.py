"""tools/demo.py input checks: the image is checked before the model is built,
--classes errors speak of list items, trailing blank lines in class files are fine, and the
legend fits the longest name and shows each class's area."""
import os
import subprocess
import sys

import numpy as np
import pytest

from silc_seg.models.utils import load_class_names, parse_class_list
from silc_seg.utils import import_file_as_module
from .test_oracle import REPO

ZS_DEMO = os.path.join('configs', 'silc', 'zs_demo.py')


def run_demo(*args):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, 'tools/demo.py', *args],
                          cwd=REPO,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)


def load_demo_tool():
    return import_file_as_module(os.path.join(REPO, 'tools/demo.py'), 'demo')


def test_class_file_trailing_blank_lines_are_fine(tmp_path):
    path = tmp_path / 'names.txt'
    path.write_text('cat\ngrass, lawn\n\n  \n\n')
    assert load_class_names(str(path)) == [['cat'], ['grass', 'lawn']]


def test_class_list_errors_speak_of_items():
    assert parse_class_list('cat, grass ,sky') == [['cat'], ['grass'], ['sky']]
    with pytest.raises(ValueError) as error:
        parse_class_list('a,b,')
    assert 'item 3' in str(error.value) and 'line' not in str(error.value)


@pytest.mark.slow
def test_demo_stops_on_bad_classes_and_bad_image_before_building_the_model(tmp_path):
    (tmp_path / 'notes.png').write_text('not an image')
    result = run_demo(
        str(tmp_path / 'notes.png'), '--classes', 'a,b,', '--config', ZS_DEMO, '--checkpoint',
        str(tmp_path / 'missing.pth'))
    assert result.returncode != 0
    assert "--classes: item 3 of 'a,b,' is empty" in result.stderr, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr
    result = run_demo(
        str(tmp_path / 'notes.png'), '--classes', 'a,b', '--config', ZS_DEMO, '--checkpoint',
        str(tmp_path / 'missing.pth'))
    assert result.returncode != 0
    # The image is read before the model is built (the checkpoint is never looked at).
    assert f'{tmp_path / "notes.png"} is not an image' in result.stderr, result.stderr[-2000:]
    assert 'missing.pth' not in result.stderr and 'Traceback' not in result.stderr
    result = run_demo(
        str(tmp_path / 'nothing.png'), '--classes', 'a,b', '--config', ZS_DEMO, '--checkpoint',
        str(tmp_path / 'missing.pth'))
    assert result.returncode != 0 and 'no such image file' in result.stderr


def test_legend_fits_the_longest_name_and_shows_areas():
    demo = load_demo_tool()
    image = np.zeros((30, 40, 3), np.uint8)
    names = ['sky', 'a rather long class name that needs a wide legend column']
    palette = demo.class_palette(2)
    canvas = demo.add_legend(image, names, palette, [0, 1], [0.25, 0.75])
    legend = canvas[:, 40:]
    ink = (legend < 128).all(-1)  # black text
    columns = np.nonzero(ink.any(0))[0]
    assert columns.max() > 220  # wider than the old fixed legend ...
    assert columns.max() < legend.shape[1] - 4  # ... and nothing clipped at the right edge
    assert canvas.shape[0] >= 2 * demo.LEGEND_ROW
    assert demo.legend_text(names[1], 0.75).endswith('75.0%')
