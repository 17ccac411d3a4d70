"""OpenVocabSegmenter: the README example as written, on the stand-in publisher, and the result
object (labels, probabilities, areas, overlay, label PNG) for paths, arrays, PIL images and
batches."""
import os.path as osp
import re

import numpy as np
import pytest
import torch
from PIL import Image

from silc_seg.apis import OpenVocabSegmenter
from silc_seg.converters import MODEL_CONFIGS
from .stand_ins import TINY, sha256, state_dict_bytes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
EXAMPLE = re.compile(r'<!-- BEGIN weights-example.*?-->\s*```python\n(.*?)```', re.S)


def readme_example() -> str:
    """The Python example block of README.md."""
    with open(osp.join(REPO, 'README.md')) as handle:
        match = EXAMPLE.search(handle.read())
    assert match, 'README.md has no weights-example block'
    lines = [line for line in match.group(1).splitlines() if line.strip()]
    assert len(lines) <= 5, f'the README example has {len(lines)} lines, not a few'
    return match.group(1)


def two_colour_photo(path, size=(40, 60)):
    image = np.zeros((*size, 3), np.uint8)
    image[:, :size[1] // 3] = (200, 40, 40)
    image[:, size[1] // 3:] = (40, 60, 220)
    Image.fromarray(image).save(path)
    return image


@pytest.mark.slow
def test_readme_example_runs_as_written(publishers, monkeypatch, tmp_path, capsys):
    # The stand-in publisher of OpenAI's ViT-B-16: its table entry points at a tiny QuickGELU
    # CLIP served locally (checksum in the URL), whose towers replace ViT-B-16-quickgelu's.
    from open_clip.pretrained import _PRETRAINED, _pcfg
    weights = state_dict_bytes(publishers.models['openai'], str(tmp_path / 'w.pt'))
    url = f'https://openaipublic.azureedge.net/clip/models/{sha256(weights)}/ViT-B-16.pt'
    publishers.server.serve(url, weights)
    monkeypatch.setitem(_PRETRAINED, 'ViT-B-16', dict(openai=_pcfg(url=url, quick_gelu=True)))
    monkeypatch.setitem(MODEL_CONFIGS, 'ViT-B-16-quickgelu', MODEL_CONFIGS[f'{TINY}-quickgelu'])
    monkeypatch.chdir(tmp_path)
    two_colour_photo(tmp_path / 'photo.jpg')
    exec(compile(readme_example(), 'README example', 'exec'), {})
    areas = eval(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(areas) == ['cat', 'grass', 'sky'] and abs(sum(areas.values()) - 1) < 1e-6
    assert np.asarray(Image.open(tmp_path / 'overlay.png')).shape == (40, 60, 3)


@pytest.mark.slow
def test_results_for_paths_arrays_pil_and_batches(publishers, tmp_path):
    seg = OpenVocabSegmenter(f'open_clip:{TINY}/laion', method='sclip', short_side=64)
    assert seg.device == ('cuda' if torch.cuda.is_available() else 'cpu')
    assert seg.model.dense_variant == 'sclip'
    # The towers the name implies (GELU) replaced the preset's OpenAI ones; SCLIP's own tower
    # setting is kept.
    assert seg.model.image_encoder.width == 32 and seg.model.cfg.model.image_encoder.act == 'gelu'
    assert seg.model.cfg.model.image_encoder.pos_embed_resize == 'scale_factor'
    image = two_colour_photo(tmp_path / 'photo.png')
    one = seg(str(tmp_path / 'photo.png'), 'red thing, blue thing')
    assert one.classes == ['red thing', 'blue thing']
    assert one.labels.shape == (40, 60) and one.probs.shape == (2, 40, 60)
    assert np.allclose(one.probs.sum(0), 1, atol=1e-5)
    assert np.array_equal(one.labels, one.probs.argmax(0))
    areas = one.areas()
    assert abs(sum(areas.values()) - 1) < 1e-9
    assert areas['red thing'] == pytest.approx((one.labels == 0).mean())
    batch = seg(
        [image, Image.fromarray(image), str(tmp_path / 'photo.png')], ['red thing', 'blue thing'])
    assert len(batch) == 3
    for result in batch:
        assert np.array_equal(result.labels, one.labels)
        assert np.allclose(result.probs, one.probs, atol=1e-5)
    overlay = one.overlay(str(tmp_path / 'overlay.png'), opacity=1.0)
    palette = np.array(one.palette())
    assert np.array_equal(overlay, palette[one.labels].astype(np.uint8))
    assert np.array_equal(np.asarray(Image.open(tmp_path / 'overlay.png')), overlay)
    png = one.label_image(str(tmp_path / 'labels.png'))
    reread = Image.open(tmp_path / 'labels.png')
    assert reread.mode == 'P' and np.array_equal(np.asarray(reread), one.labels)
    assert png.getpalette()[:6] == [int(c) for c in palette[:2].ravel()]


@pytest.mark.slow
def test_bad_inputs_are_clear_errors(publishers, tmp_path):
    seg = OpenVocabSegmenter(f'open_clip:{TINY}/laion', method='plain', short_side=32)
    (tmp_path / 'notes.png').write_text('not an image')
    with pytest.raises(ValueError, match='is not an image OpenCV can read'):
        seg(str(tmp_path / 'notes.png'), 'a,b')
    with pytest.raises(FileNotFoundError, match='no such image file'):
        seg(str(tmp_path / 'missing.png'), 'a,b')
    with pytest.raises(ValueError, match="item 3 of 'a,b,' is empty"):
        seg(np.zeros((8, 8, 3), np.uint8), 'a,b,')
    with pytest.raises(ValueError, match='uint8'):
        seg(np.zeros((8, 8, 3), np.float32), 'a,b')
    with pytest.raises(ValueError, match='unknown method'):
        OpenVocabSegmenter(f'open_clip:{TINY}/laion', method='nacl1p')
