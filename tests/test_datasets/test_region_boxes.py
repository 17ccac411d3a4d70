"""The ``boxes`` field (manifest, CSV, WebDataset json), its checks, TokenizeRegions and the
demo data's boxes."""
import io
import json
import tarfile

import cv2
import numpy as np
import pytest
import torch

from silc_seg.datasets import ImageTextManifestDataset, WebDatasetImageText
from silc_seg.datasets.transforms import TokenizeRegions
from silc_seg.utils.demo_data import demo_boxes, make_demo_data

GOOD = [{
    'box': [0.1, 0.2, 0.6, 0.9],
    'text': 'red stripes'
}, {
    'box': [0.0, 0.0, 1.0, 0.5],
    'text': 'plain blue'
}]


def chars(texts):
    """Test tokenizer: character codes, 6 per text, zero padded."""
    ids = torch.zeros(len(texts), 6, dtype=torch.long)
    for row, text in enumerate(texts):
        codes = [ord(c) for c in text][:6]
        ids[row, :len(codes)] = torch.tensor(codes, dtype=torch.long)
    return ids


def png(seed):
    img = np.random.default_rng(seed).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    return cv2.imencode('.png', img)[1].tobytes()


def write_manifest(root, records):
    for i in range(len(records)):
        (root / f'{i}.png').write_bytes(png(i))
    with open(root / 'train.jsonl', 'w') as f:
        for i, record in enumerate(records):
            f.write(json.dumps(dict(image=f'{i}.png', caption=f'caption {i}', **record)) + '\n')


def pipeline(max_regions=1):
    return [
        dict(type='TokenizeRegions', tokenizer=chars, max_regions=max_regions),
        dict(type='PackSILCInputs')
    ]


def test_manifest_boxes_reach_the_inputs(tmp_path):
    write_manifest(tmp_path, [dict(boxes=GOOD[:1]), {}])
    ds = ImageTextManifestDataset(
        ann_file='train.jsonl', data_root=str(tmp_path), pipeline=pipeline())
    with_box, without = ds[0]['inputs'], ds[1]['inputs']
    assert with_box['region_valid'].tolist() == [True]
    torch.testing.assert_close(with_box['region_boxes'], torch.tensor([[0.1, 0.2, 0.6, 0.9]]))
    assert with_box['region_text'].tolist() == [[ord(c) for c in 'red st']]
    # No boxes: one invalid, all-zero row (batches with the others, trains captions only).
    assert without['region_valid'].tolist() == [False]
    assert without['region_text'].abs().sum() == 0


@pytest.mark.slow
@pytest.mark.parametrize('bad', [
    [{
        'box': [0.5, 0.2, 0.4, 0.9],
        'text': 'x0 > x1'
    }],
    [{
        'box': [0.1, 0.2, 1.2, 0.9],
        'text': 'outside'
    }],
    [{
        'box': [0.1, 0.2, 0.3],
        'text': 'three numbers'
    }],
    [{
        'box': [0.1, 0.2, 0.3, 0.4],
        'text': ''
    }],
    [{
        'box': [0.1, 0.2, 0.3, 0.4]
    }],
    {
        'box': [0.1, 0.2, 0.3, 0.4],
        'text': 'not a list'
    },
])
def test_bad_boxes_are_counted_skips(tmp_path, bad):
    write_manifest(tmp_path, [dict(boxes=bad), {}])
    ds = ImageTextManifestDataset(
        ann_file='train.jsonl', data_root=str(tmp_path), pipeline=pipeline())
    out = ds[0]  # replaced by the good sample, and counted
    # (The replacement is drawn at random: it may hit the bad one again, counted again.)
    assert out['data_samples'].metainfo['num_skipped'] >= 1
    assert out['data_samples'].metainfo['img_path'].endswith('1.png')


def test_csv_boxes_and_region_sampling(tmp_path):
    (tmp_path / '0.png').write_bytes(png(0))
    (tmp_path / 'train.csv').write_text('image,caption,boxes\n0.png,two regions,"' +
                                        json.dumps(GOOD).replace('"', '""') + '"\n')
    ds = ImageTextManifestDataset(
        ann_file='train.csv', data_root=str(tmp_path), pipeline=pipeline(max_regions=3))
    inputs = ds[0]['inputs']
    assert inputs['region_valid'].tolist() == [True, True, False]
    np.random.seed(0)
    one = TokenizeRegions(chars, max_regions=1).transform(dict(boxes=GOOD))
    assert one['region_valid'].tolist() == [True]
    assert one['region_boxes'][0].tolist() in ([pytest.approx(g['box']) for g in GOOD])


def test_webdataset_json_boxes(tmp_path):
    shard = tmp_path / 'shard-0.tar'
    with tarfile.open(shard, 'w') as tar:
        for key, meta in (('a', dict(caption='with',
                                     boxes=GOOD[:1])), ('b', dict(caption='without')),
                          ('c', dict(caption='bad', boxes=[{
                              'box': [1, 1, 0, 0],
                              'text': 'x'
                          }]))):
            files = ((f'{key}.png', png(0)), (f'{key}.json', json.dumps(meta).encode()))
            for name, data in files:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    ds = WebDatasetImageText(str(shard), pipeline=pipeline(), repeat=False, shuffle=False)
    samples = list(ds)
    assert [s['data_samples'].metainfo['img_path'].split(':')[-1] for s in samples] == ['a', 'b']
    assert samples[0]['inputs']['region_valid'].tolist() == [True]
    assert samples[1]['inputs']['region_valid'].tolist() == [False]
    assert ds.skipped == 1


def test_demo_data_boxes(tmp_path):
    label = np.zeros((8, 8), dtype=np.uint8)
    label[2:5, 1:7] = 3
    assert demo_boxes(label, [0, 3]) == [dict(box=[0.125, 0.25, 0.875, 0.625], text='plain red')]
    make_demo_data(str(tmp_path), num_train=6, num_val=2, image_size=32, num_seg_train=0)
    records = [
        json.loads(line)
        for line in (tmp_path / 'annotations' / 'pretrain_train.jsonl').read_text().splitlines()
    ]
    assert all('boxes' not in r for r in records[1::2])
    assert any('boxes' in r for r in records[0::2])
