import csv
import io
import json
import os.path as osp
import random
import tarfile

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import silc_seg  # noqa: F401
from silc_seg.datasets import ImageTextManifestDataset, WebDatasetImageText
from silc_seg.datasets.image_text_utils import seeded_global_rngs
from silc_seg.datasets.webdataset_image_text import shards_for


def _png(seed, size=12):
    img = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return cv2.imencode('.png', img)[1].tobytes()


def _write(path, data):
    with open(path, 'wb') as f:
        f.write(data)


@pytest.fixture
def manifest_dir(tmp_path):
    for i in range(6):
        _write(tmp_path / f'{i}.png', _png(i))
    _write(tmp_path / 'corrupt.png', b'\x89PNG not really an image')
    records = [dict(image=f'{i}.png', caption=f'caption {i}', labels=[i % 3]) for i in range(6)]
    records[0]['extra_captions'] = ['other zero', 'third zero', '  ']
    records += [
        dict(image='corrupt.png', caption='corrupt bytes'),
        dict(image='missing.png', caption='missing file'),
        dict(image='1.png', caption='   '),
        dict(image='2.png', caption=7),
    ]
    with open(tmp_path / 'train.jsonl', 'w') as f:
        for r in records:
            f.write(json.dumps(r) + '\n')
    return tmp_path


def _dataset(root, ann='train.jsonl', **kwargs):
    return ImageTextManifestDataset(
        ann_file=ann, data_root=str(root), pipeline=[dict(type='PackSILCInputs')], **kwargs)


def test_manifest_jsonl_good_samples(manifest_dir):
    ds = _dataset(manifest_dir)
    assert len(ds) == 10
    out = ds[3]
    sample = out['data_samples']
    assert out['inputs']['image'].shape == (3, 12, 12)
    assert sample.caption == 'caption 3' and sample.num_skipped == 0
    assert sample.img_path == osp.join(str(manifest_dir), '3.png')
    assert sample.gt_label.tolist() == [0]
    np.random.seed(0)
    drawn = {ds[0]['data_samples'].caption for _ in range(40)}
    assert drawn == {'caption 0', 'other zero', 'third zero'}  # blank extra dropped


@pytest.mark.slow
@pytest.mark.parametrize('idx,reason', [(6, 'corrupt_image'), (7, 'missing_image'),
                                        (8, 'empty_caption'), (9, 'invalid_caption')])
def test_manifest_bad_sample_replaced_and_counted(manifest_dir, idx, reason, caplog):
    ds = _dataset(manifest_dir)
    np.random.seed(idx)
    out = ds[idx]
    sample = out['data_samples']
    assert sample.num_skipped >= 1
    assert sample.caption.startswith('caption')  # a good replacement
    with pytest.raises(RuntimeError, match=reason):
        _dataset(manifest_dir, test_mode=True)[idx]


def test_manifest_all_bad_raises_clearly(manifest_dir):
    with open(manifest_dir / 'bad.jsonl', 'w') as f:
        f.write(json.dumps(dict(image='missing.png', caption='x')) + '\n')
    with pytest.raises(RuntimeError, match='bad samples in a row'):
        _dataset(manifest_dir, ann='bad.jsonl', max_refetch=3)[0]


def test_manifest_csv_and_errors(manifest_dir):
    with open(manifest_dir / 'train.csv', 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['image', 'caption', 'extra_captions'])
        writer.writerow(['0.png', 'a, quoted caption', 'two||three'])
        writer.writerow(['1.png', 'one', ''])
    ds = _dataset(manifest_dir, ann='train.csv')
    assert len(ds) == 2
    np.random.seed(1)
    assert {ds[0]['data_samples'].caption
            for _ in range(30)} == {'a, quoted caption', 'two', 'three'}
    assert ds[1]['data_samples'].caption == 'one'
    _write(manifest_dir / 'x.txt', b'')
    with pytest.raises(ValueError, match='unsupported manifest format'):
        _dataset(manifest_dir, ann='x.txt')
    with open(manifest_dir / 'nokey.jsonl', 'w') as f:
        f.write(json.dumps(dict(img='0.png', caption='x')) + '\n')
    with pytest.raises(KeyError, match='lacks "image"'):
        _dataset(manifest_dir, ann='nokey.jsonl')


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _write_shard(path, keys, bad=None):
    bad = bad or {}
    with tarfile.open(path, 'w') as tar:
        for key in keys:
            if key in bad and bad[key] == 'no_image':
                _add(tar, f'{key}.txt', b'no image here')
                continue
            image = b'garbage' if bad.get(key) == 'corrupt_image' else _png(sum(map(ord, key)))
            _add(tar, f'{key}.jpg' if key.endswith('j') else f'{key}.png', image)
            if bad.get(key) == 'empty_caption':
                _add(tar, f'{key}.txt', b'  \n')
            elif bad.get(key) == 'json_caption':
                _add(tar, f'{key}.json', json.dumps(dict(caption=f'cap {key}')).encode())
            else:
                _add(tar, f'{key}.txt', f'cap {key}'.encode())


@pytest.fixture
def shard_dir(tmp_path):
    for s in range(4):
        _write_shard(tmp_path / f'shard-{s:02d}.tar', [f's{s}k{i}' for i in range(5)])
    return tmp_path


def _keys(dataset, **loader_kwargs):
    loader = DataLoader(dataset, batch_size=None, **loader_kwargs)
    return [d['data_samples'].sample_idx for d in loader]


def _wds(pattern, **kwargs):
    kwargs.setdefault('pipeline', [dict(type='PackSILCInputs')])
    kwargs.setdefault('repeat', False)
    return WebDatasetImageText(shards=pattern, **kwargs)


def test_webdataset_reads_all_samples_once(shard_dir):
    pattern = str(shard_dir / 'shard-{00..03}.tar')
    keys = _keys(_wds(pattern, shuffle_buffer=7))
    assert sorted(keys) == sorted(f's{s}k{i}' for s in range(4) for i in range(5))
    # Two workers: each reads its own shards; together everything exactly once.
    keys_2w = _keys(_wds(pattern, shuffle_buffer=7), num_workers=2)
    assert sorted(keys_2w) == sorted(keys)


def test_webdataset_epochs_reshuffle_deterministically(shard_dir):
    pattern = str(shard_dir / 'shard-{00..03}.tar')
    ds = _wds(pattern, shuffle_buffer=4, seed=3)
    epoch0 = _keys(ds)
    assert _keys(_wds(pattern, shuffle_buffer=4, seed=3)) == epoch0
    ds.set_epoch(1)
    epoch1 = _keys(ds)
    assert epoch1 != epoch0 and sorted(epoch1) == sorted(epoch0)
    repeating = WebDatasetImageText(
        shards=pattern, shuffle_buffer=4, seed=3, pipeline=[dict(type='PackSILCInputs')])
    stream = iter(repeating)
    first_two = [next(stream)['data_samples'].sample_idx for _ in range(40)]
    assert first_two == epoch0 + epoch1


def test_shard_split_disjoint_and_complete():
    urls = [f'u{i}' for i in range(23)]
    for world_size, num_workers in [(1, 1), (2, 3), (4, 2), (3, 1)]:
        for epoch in (0, 1):
            parts = [
                shards_for(urls, epoch, 0, rank, world_size, worker, num_workers, True)
                for rank in range(world_size) for worker in range(num_workers)
            ]
            flat = [u for part in parts for u in part]
            assert sorted(flat) == sorted(urls) and len(flat) == len(set(flat))
            sizes = [len(p) for p in parts]
            assert max(sizes) - min(sizes) <= 1
    assert shards_for(urls, 0, 0, 0, 2, 0, 1, True) != shards_for(urls, 1, 0, 0, 2, 0, 1, True)


@pytest.mark.parametrize('cut', ['inside_header', 'inside_data', 'member_boundary'])
def test_webdataset_bad_samples_and_truncated_shard_counted(tmp_path, cut):
    keys = [f'k{i}' for i in range(6)]
    bad = dict(k1='corrupt_image', k2='empty_caption', k3='no_image', k4='json_caption')
    _write_shard(tmp_path / 'a.tar', keys, bad)
    _write_shard(tmp_path / 'b.tar', [f'b{i}' for i in range(8)])
    data = (tmp_path / 'b.tar').read_bytes()
    with tarfile.open(tmp_path / 'b.tar') as tar:
        member = tar.getmembers()[7]  # b3.txt
    end = dict(
        inside_header=member.offset + 100,
        inside_data=member.offset_data + 1,
        member_boundary=member.offset)[cut]
    _write(tmp_path / 'b.tar', data[:end])
    _write(tmp_path / 'c.tar', b'not a tar at all' * 10)
    ds = _wds([str(tmp_path / n) for n in ('a.tar', 'b.tar', 'c.tar')], shuffle=False)
    out = list(DataLoader(ds, batch_size=None))
    got = [d['data_samples'].sample_idx for d in out]
    skipped = sum(d['data_samples'].num_skipped for d in out)
    assert got[:3] == ['k0', 'k4', 'k5']  # json caption read, three bad ones skipped
    assert out[1]['data_samples'].caption == 'cap k4'
    b_keys = got[3:]
    # b0-b2 are complete; b3 has lost its caption and the rest is gone.
    assert b_keys == ['b0', 'b1', 'b2']
    # 3 bad samples in a.tar, the truncated shard b, the unreadable shard c and, when the cut
    # falls between b3's files, the incomplete b3 itself. Skips after the last good sample
    # have no sample to travel with and stay in ds.skipped.
    assert skipped + ds.skipped == (5 if cut == 'inside_data' else 6)
    assert skipped == 3


def test_webdataset_too_few_shards_for_workers(shard_dir):
    ds = _wds(str(shard_dir / 'shard-00.tar'))
    with pytest.raises(ValueError, match='cannot feed'):
        _keys(ds, num_workers=2)
    with pytest.raises(ValueError, match='no shard matches'):
        WebDatasetImageText(shards=[])


def _next_within(stream, seconds=20):
    """``next(stream)``, or a failure instead of a hang when it takes longer than ``seconds``."""
    import signal

    class Hang(BaseException):  # not an Exception: the dataset's error handling must not eat it
        pass

    def _timeout(signum, frame):
        raise Hang(f'no sample and no error within {seconds} s')

    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(seconds)
    try:
        return next(stream)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.slow
@pytest.mark.parametrize('repeat', [True, False])
def test_webdataset_mistyped_shards_fail_instead_of_hanging(tmp_path, repeat, monkeypatch):
    # A mistyped path: every shard is missing; a repeating stream must fail, not spin.
    import silc_seg.datasets.webdataset_image_text as wds_module
    logged = []
    monkeypatch.setattr(wds_module, 'log_skipped', lambda err: logged.append(err.reason))
    ds = WebDatasetImageText(
        shards=str(tmp_path / 'nonexistent/{00000..00003}.tar'),
        repeat=repeat,
        pipeline=[dict(type='PackSILCInputs')])
    with pytest.raises(RuntimeError, match=r'no usable sample in a full pass over 4 shard') as e:
        _next_within(iter(ds))
    assert '4 missing_shard' in str(e.value) and 'nonexistent/00000.tar' in str(e.value)
    assert logged == ['missing_shard'] * 4


def test_webdataset_all_bad_samples_fail_but_one_good_shard_is_enough(tmp_path, shard_dir):
    _write(tmp_path / 'junk.tar', b'not a tar at all' * 10)
    _write_shard(tmp_path / 'bad.tar', ['k0', 'k1'], dict(k0='corrupt_image', k1='no_image'))
    ds = WebDatasetImageText(
        shards=[str(tmp_path / 'junk.tar'), str(tmp_path / 'bad.tar')],
        pipeline=[dict(type='PackSILCInputs')])
    with pytest.raises(RuntimeError, match='1 corrupt_shard, 1 corrupt_image, 1 missing_image'):
        _next_within(iter(ds))
    # A missing shard among good ones is skipped and counted, not fatal.
    ds = WebDatasetImageText(
        shards=[str(tmp_path / 'gone.tar'),
                str(shard_dir / 'shard-00.tar')],
        shuffle=False,
        pipeline=[dict(type='PackSILCInputs')])
    stream = iter(ds)
    first = _next_within(stream)['data_samples']
    assert first.sample_idx == 's0k0' and first.num_skipped == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    'loader_kwargs',
    [dict(), dict(num_workers=2),
     dict(num_workers=2, persistent_workers=True)])
def test_webdataset_counts_its_own_epochs(shard_dir, loader_kwargs):
    # No hook calls set_epoch: each pass over the dataloader is the next epoch by itself.
    pattern = str(shard_dir / 'shard-{00..03}.tar')
    ds = _wds(pattern, shuffle_buffer=4, seed=3)
    loader = DataLoader(ds, batch_size=None, **loader_kwargs)
    passes = [[d['data_samples'].sample_idx for d in loader] for _ in range(3)]
    expected = []
    for epoch in range(3):
        reference = _wds(pattern, shuffle_buffer=4, seed=3)
        reference.set_epoch(epoch)
        expected.append(_keys(reference, **loader_kwargs))
    assert passes == expected
    assert passes[0] != passes[1] != passes[2]


@pytest.mark.slow
@pytest.mark.parametrize('num_workers', [0, 2])
@pytest.mark.parametrize('stop', [1, 4, 9, 13])
def test_webdataset_resume_at_position_continues_the_same_stream(shard_dir, num_workers, stop):
    """A stream resumed at the positions of the last samples seen yields exactly the samples an
    uninterrupted stream yields next (batches of 2, round robin over the workers), with the
    same random crops (drawn from each sample's stream position)."""
    pattern = str(shard_dir / 'shard-{00..03}.tar')
    pipeline = [
        dict(type='FastRandomResizedCrop', scale=6, crop_ratio_range=(0.2, 1.0)),
        dict(type='PackSILCInputs')
    ]

    def batches(dataset, count):
        loader = DataLoader(
            dataset,
            batch_size=2,
            num_workers=num_workers,
            collate_fn=lambda batch: [(d['data_samples'], d['inputs']['image']) for d in batch])
        stream = iter(loader)
        return [next(stream) for _ in range(count)]

    straight = batches(_wds(pattern, repeat=True, shuffle_buffer=3, seed=5, pipeline=pipeline), 30)
    last_seen = {}
    for batch in straight[:stop]:
        for sample, _ in batch:
            last_seen[sample.stream_position[0]] = sample.stream_position
    workers = max(num_workers, 1)
    next_worker = (straight[stop - 1][-1][0].stream_position[0] + 1) % workers
    resumed_ds = _wds(pattern, repeat=True, shuffle_buffer=3, seed=5, pipeline=pipeline)
    resumed_ds.resume_at(list(last_seen.values()), workers, next_worker)
    resumed = batches(resumed_ds, 30 - stop)
    keys = lambda bs: [[s.sample_idx for s, _ in b] for b in bs]  # noqa: E731
    assert keys(resumed) == keys(straight[stop:])  # 30 batches: the stream crosses epochs
    crops = lambda bs: [inputs for b in bs for _, inputs in b]  # noqa: E731
    assert len(crops(resumed)) == 2 * (30 - stop)
    for got, expected in zip(crops(resumed), crops(straight[stop:])):
        assert torch.equal(got, expected)
    # The crops do vary: the same image is cropped differently in different epochs.
    assert not all(torch.equal(a, b) for a, b in zip(crops(straight[:10]), crops(straight[10:20])))


def test_seeded_global_rngs_repeat_draws_and_restore_states():
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    before = random.random(), np.random.rand(), torch.rand(1)
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    draws = []
    for _ in range(2):
        with seeded_global_rngs((5, 0, 1, 2, 3, 4)):
            draws.append((random.random(), np.random.rand(), torch.rand(1)))
    with seeded_global_rngs((5, 0, 1, 2, 3, 5)):
        other = random.random(), np.random.rand(), torch.rand(1)
    assert draws[0][:2] == draws[1][:2] and torch.equal(draws[0][2], draws[1][2])
    assert other[0] != draws[0][0] and other[1] != draws[0][1]
    # The draws outside the blocks continue as if the blocks had not happened.
    after = random.random(), np.random.rand(), torch.rand(1)
    assert after[:2] == before[:2] and torch.equal(after[2], before[2])
    with seeded_global_rngs((-3, 2**70)):  # any sign and size
        pass
    # Without restoring (dataloader workers): the same draws, the generators left seeded.
    with seeded_global_rngs((5, 0, 1, 2, 3, 4), restore=False):
        unrestored = random.random(), np.random.rand(), torch.rand(1)
    assert unrestored[:2] == draws[0][:2] and torch.equal(unrestored[2], draws[0][2])
    # ...and what follows the block continues the seeded streams.
    with seeded_global_rngs((5, 0, 1, 2, 3, 4)):
        first, second = [(random.random(), np.random.rand(), torch.rand(1)) for _ in range(2)]
    with seeded_global_rngs((5, 0, 1, 2, 3, 4), restore=False):
        random.random(), np.random.rand(), torch.rand(1)
    following = random.random(), np.random.rand(), torch.rand(1)
    assert following[:2] == second[:2] and torch.equal(following[2], second[2])


@pytest.mark.slow
def test_webdataset_resume_decodes_nothing_before_the_position(shard_dir, monkeypatch):
    pattern = str(shard_dir / 'shard-{00..03}.tar')
    straight = [
        d['data_samples'] for d in DataLoader(_wds(pattern, shuffle_buffer=4), batch_size=None)
    ]
    decoded = []
    original = WebDatasetImageText._decode
    monkeypatch.setattr(WebDatasetImageText, '_decode',
                        lambda self, raw: decoded.append(raw['__key__']) or original(self, raw))
    ds = _wds(pattern, shuffle_buffer=4)
    ds.resume_at([straight[14].stream_position], num_workers=1)
    rest = [d['data_samples'].sample_idx for d in DataLoader(ds, batch_size=None)]
    assert rest == [s.sample_idx for s in straight[15:]]
    assert decoded == rest  # the 15 samples before the position were not decoded again
