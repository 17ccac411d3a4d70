"""tools/demo.py on a folder and a glob with a weights name: an overlay and a palette label PNG
per image (the labels the Python API gives), a per-class area CSV, unreadable files skipped and
counted."""
import csv
import os.path as osp
import sys

import numpy as np
import pytest
from PIL import Image

from silc_seg.apis import OpenVocabSegmenter
from silc_seg.utils import import_file_as_module
from .stand_ins import TINY
from .test_open_vocab_segmenter import REPO, two_colour_photo


def run_demo(monkeypatch, *args):
    demo = import_file_as_module(osp.join(REPO, 'tools', 'demo.py'), 'demo')
    monkeypatch.setattr(sys, 'argv', ['demo.py', *args])
    demo.main()


@pytest.mark.slow
def test_folder_and_glob_batch(publishers, monkeypatch, tmp_path, capsys):
    photos, more = tmp_path / 'photos', tmp_path / 'more'
    photos.mkdir(), more.mkdir()
    two_colour_photo(photos / 'a.png')
    two_colour_photo(photos / 'b.jpg', size=(30, 50))
    (photos / 'broken.png').write_text('not an image')
    (photos / 'notes.txt').write_text('not an image either, and not an image name')
    two_colour_photo(more / 'c.png', size=(50, 40))
    out = tmp_path / 'out'
    name = f'open_clip:{TINY}/hub'
    run_demo(monkeypatch, str(photos), str(more / '*.png'), '--checkpoint', name,
             '--classes', 'red,blue', '--method', 'sclip', '--short-side', '64', '--out-dir',
             str(out), '--areas-csv', str(out / 'areas.csv'), '--device', 'cpu')
    stdout = capsys.readouterr().out
    assert f'saved 3 overlay(s) and label map(s) to {out}' in stdout
    assert f'skipped 1 unreadable file(s): {photos / "broken.png"}' in stdout
    seg = OpenVocabSegmenter(name, method='sclip', device='cpu', short_side=64)
    expected = {
        'photos/a': seg(str(photos / 'a.png'), 'red,blue'),
        'photos/b': seg(str(photos / 'b.jpg'), 'red,blue'),
        'more/c': seg(str(more / 'c.png'), 'red,blue')
    }
    for stem, result in expected.items():
        labels = Image.open(out / f'{stem}_labels.png')
        assert labels.mode == 'P' and np.array_equal(np.asarray(labels), result.labels)
        overlay = np.asarray(Image.open(out / f'{stem}_overlay.png'))
        height, width = result.labels.shape
        # The image with the legend column on its right (at least as tall as the legend).
        assert overlay.shape[0] >= height and overlay.shape[1] > width
    with open(out / 'areas.csv') as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ['image', 'red', 'blue'] and len(rows) == 4
    for row in rows[1:]:
        stem = osp.splitext(osp.relpath(row[0], tmp_path))[0]
        areas = expected[stem].areas()
        assert [float(v) for v in row[1:]] == pytest.approx([areas['red'], areas['blue']],
                                                            abs=1e-6)
