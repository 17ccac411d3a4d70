"""Class names and images a new user gives the demo (issue 24, item 3): CJK and emoji names,
names longer than the text context, duplicate names, a 1x1 image."""
import os.path as osp
import warnings

import numpy as np
import pytest
import torch

from silc_seg.apis.legend_text import draw_text, font_file_for, text_runs
from silc_seg.models.tokenizers import CLIPTokenizer
from silc_seg.models.utils import TextClassifier, build_vocabulary, parse_class_list
from silc_seg.utils import import_file_as_module

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_demo_tool():
    return import_file_as_module(osp.join(REPO, 'tools', 'demo.py'), 'silc_demo_tool')


def test_duplicate_class_names_are_refused():
    """On main, "cat,dog,cat" gave two 'cat' classes that split the cat pixels."""
    with pytest.raises(
            ValueError,
            match=r"--classes: the class name 'Cat' is given twice "
            r'\(classes 1 and 3\)'):
        parse_class_list('cat,dog,Cat ')
    with pytest.raises(ValueError, match=r"'sky' is given twice \(classes 1 and 2\)"):
        build_vocabulary(['sky, heaven', 'sky,  Heaven'])
    # One first name for two classes (published so in ADE-847): a warning naming them.
    with pytest.warns(UserWarning, match=r"'sky': classes 1, 2"):
        build_vocabulary(['sky, heaven', 'sky'])
    # Synonyms shared by two classes stay allowed (SCLIP's COCO-Object file has one).
    assert build_vocabulary(['bed, bunk', 'couch, bed']) == [['bed', 'bunk'], ['couch', 'bed']]


class _Encoder(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(49408, 4)

    def forward(self, tokens):
        return self.embedding(tokens).mean(1)


def test_class_names_longer_than_the_context_are_cut_with_notice():
    """On main the tokenizer cut them silently (both names became the same prompt)."""
    tokenizer = CLIPTokenizer(context_length=8)
    classifier = TextClassifier(_Encoder(), tokenizer, templates=['a photo of a {}.'])
    long_name = 'very large old wooden kitchen table with drawers'
    with pytest.warns(
            UserWarning,
            match=r"1 of 2 prompts are longer than the text context "
            r"\(8 tokens\) and were cut, e\.g\. 'a photo of a very large"):
        classifier([[long_name], ['cat']])
    ids = tokenizer.encode('a photo of a cat.')
    assert len(ids) + 2 <= 8  # the short one fits (start + text + end): no notice for it
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        classifier([['cat'], ['dog']])


def _has_fonts():
    return font_file_for('猫') is not None and font_file_for('🐱') is not None


def test_legend_draws_cjk_and_emoji_names():
    """On main the legend drew '猫' and '🐱' as '?' with cv2's Hershey font."""
    if not _has_fonts():
        reason = ('no installed font has CJK and emoji glyphs (apt-get install fonts-noto-cjk '
                  'fonts-noto-color-emoji, docs/install.md)')
        print(f'SKIPPED: {reason}')
        pytest.skip(reason)
    runs = text_runs('猫 cat 🐱')
    assert ''.join(run for run, _ in runs) == '猫 cat 🐱'
    assert dict((run[0], path) for run, path in runs)['猫'] == font_file_for('猫')
    blank = np.full((30, 60, 3), 255, np.uint8)
    cat = draw_text(blank, [('猫', (2, 4))], 20)
    question = draw_text(blank, [('?', (2, 4))], 20)
    ink_cat, ink_question = (cat < 128).all(-1), (question < 128).all(-1)
    assert ink_cat.sum() > 2 * ink_question.sum()  # a CJK glyph, not a '?' or nothing
    demo = load_demo_tool()
    image = np.zeros((40, 40, 3), np.uint8)
    canvas = demo.add_legend(image, ['猫', '🐱 cat'], demo.class_palette(2), [0, 1], [0.5, 0.5])
    legend = canvas[:, 40 + 8 + 16 + 8:]
    assert (legend < 128).all(-1).sum() > ink_question.sum()


def test_missing_glyphs_warn_once(monkeypatch):
    import silc_seg.apis.legend_text as legend
    monkeypatch.setattr(legend, 'font_file_for', lambda char: None)
    monkeypatch.setattr(legend, '_warned', set())
    with pytest.warns(UserWarning, match=r"no installed font has the characters '猫'"):
        legend.text_runs('猫')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        legend.text_runs('猫 again')  # said once


@pytest.mark.slow
def test_a_1x1_image_gets_an_overlay(tmp_path):
    """On main: IndexError in the overlay of a 1x1 image."""
    import os
    import subprocess
    import sys

    from PIL import Image

    from .test_oracle import write_config, write_oracle_checkpoint
    from .tiny_datasets import class_palette
    classes = ['cat', 'grass', 'sky']
    palette = class_palette(3)
    Image.fromarray(np.full((1, 1, 3), palette[2], np.uint8)).save(tmp_path / 'dot.png')
    config = write_config(tmp_path, 'zs_ade150.py', str(tmp_path), palette)
    checkpoint = str(tmp_path / 'oracle.pth')
    write_oracle_checkpoint(config, classes, checkpoint, shuffle=False)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    out = tmp_path / 'dot_overlay.png'
    result = subprocess.run([
        sys.executable, 'tools/demo.py',
        str(tmp_path / 'dot.png'), '--classes', ','.join(classes), '--config', config,
        '--checkpoint', checkpoint, '--out',
        str(out)
    ],
                            cwd=REPO,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'sky 100.0%' in result.stdout, result.stdout[-2000:]
    overlay = np.asarray(Image.open(out))
    assert overlay.shape[0] >= 2 * 22 and (overlay < 128).all(-1).any()  # legend drawn
