"""tools/demo.py on an image of arbitrary size with free-form class names (oracle tower)."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from silc_seg.utils import import_file_as_module
from .test_oracle import REPO, write_config, write_oracle_checkpoint
from .tiny_datasets import class_palette


@pytest.mark.slow
def test_demo_overlay_with_legend(tmp_path):
    classes = ['cat', 'grass', 'sky']
    palette = class_palette(3)
    # 70 x 101: not a multiple of anything; resized to short side 336 by the test pipeline.
    image = np.zeros((70, 101, 3), np.uint8)
    image[:, :40] = palette[1]
    image[:, 40:] = palette[2]
    Image.fromarray(image).save(tmp_path / 'photo.png')
    config = write_config(tmp_path, 'zs_ade150.py', str(tmp_path), palette)
    checkpoint = str(tmp_path / 'oracle.pth')
    write_oracle_checkpoint(config, classes, checkpoint, shuffle=False)
    out = tmp_path / 'out' / 'overlay.png'
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    result = subprocess.run([
        sys.executable, 'tools/demo.py',
        str(tmp_path / 'photo.png'), '--classes', ','.join(classes), '--config', config,
        '--checkpoint', checkpoint, '--out',
        str(out)
    ],
                            cwd=REPO,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    overlay = np.asarray(Image.open(out))
    # The image is 40/101 grass and 61/101 sky; resizing to 336 and back blurs the edge by
    # at most a pixel column.
    line = result.stdout.strip().splitlines()[-1]
    areas = dict(item.rsplit(' ', 1) for item in line.split(': ', 1)[1].split(', '))
    assert set(areas) == {'grass', 'sky'}
    assert abs(float(areas['grass'].rstrip('%')) - 100 * 40 / 101) < 1.0
    # Legend swatches of the two predicted classes, in the demo's class colours.
    demo = import_file_as_module(os.path.join(REPO, 'tools/demo.py'), 'demo')
    demo_palette = demo.class_palette(3)
    # The legend column is as wide as its longest entry ("grass  39.6%").
    assert overlay.shape == (70, 101 + demo.add_legend(
        np.zeros((70, 0, 3), np.uint8), classes, demo_palette, [1, 2],
        [float(areas['grass'].rstrip('%')) / 100,
         float(areas['sky'].rstrip('%')) / 100]).shape[1], 3)
    legend = overlay[:, 101:].reshape(-1, 3)
    present = [(legend == colour).all(-1).sum() for colour in demo_palette]
    # cv2 rectangles include both corners: 17 x 17 pixels.
    assert present[0] == 0 and present[1] == present[2] == 17 * 17


@pytest.mark.slow
def test_demo_needs_classes(tmp_path):
    result = subprocess.run(
        [sys.executable, 'tools/demo.py', 'x.png', '--config', 'c.py', '--checkpoint', 'w.pth'],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120)
    assert result.returncode != 0 and 'exactly one of --classes' in result.stderr
