"""WebDatasetImageText on data as users have it: img2dataset output, list files, pipe: and
fsspec URLs, resampled shards, and the split of samples between ranks and workers."""
import importlib.util
import io
import json
import tarfile
from itertools import islice

import cv2
import numpy as np
import pytest
from torch.utils.data import DataLoader

import silc_seg.datasets.webdataset_image_text as wds_module
from silc_seg.datasets import WebDatasetImageText
from silc_seg.datasets.webdataset_image_text import expand_shards


def _jpg(seed, size=12):
    img = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return cv2.imencode('.jpg', img)[1].tobytes()


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_img2dataset_shard(folder, shard_id, num, failed=()):
    """One shard as img2dataset writes it (writer.py, WebDatasetSampleWriter): ``00000.tar``
    with ``<key>.jpg``, ``<key>.txt`` and ``<key>.json`` (the metadata: ``key``, ``status``,
    ``url``, ...) per sample, keys = 5-digit shard id + 4-digit index, and ``00000_stats.json``
    beside it. ``failed`` indices get ``status: failed_to_download`` (written here into the tar
    too, as a re-packed or filtered output may have them)."""
    keys = []
    with tarfile.open(folder / f'{shard_id:05d}.tar', 'w') as tar:
        for i in range(num):
            key = f'{shard_id:05d}{i:04d}'
            status = 'failed_to_download' if i in failed else 'success'
            meta = dict(
                url=f'http://example.com/{key}.jpg',
                caption=f'json caption {key}',
                key=key,
                status=status,
                error_message='HTTP 404' if i in failed else None,
                width=12,
                height=12,
                original_width=40,
                original_height=30)
            _add(tar, f'{key}.jpg', _jpg(shard_id * 1000 + i))
            _add(tar, f'{key}.txt', f'caption {key}'.encode())
            _add(tar, f'{key}.json', json.dumps(meta, indent=4).encode())
            if i not in failed:
                keys.append(key)
    stats = dict(
        count=num,
        successes=num - len(failed),
        failed_to_download=len(failed),
        failed_to_resize=0,
        status_dict={'success': num - len(failed)})
    (folder / f'{shard_id:05d}_stats.json').write_text(json.dumps(stats))
    return keys


def _wds(shards, **kwargs):
    kwargs.setdefault('pipeline', [dict(type='PackSILCInputs')])
    kwargs.setdefault('repeat', False)
    kwargs.setdefault('shuffle_buffer', 3)
    return WebDatasetImageText(shards=shards, **kwargs)


def _samples(dataset, limit=None, **loader_kwargs):
    loader = DataLoader(dataset, batch_size=None, **loader_kwargs)
    return [d['data_samples'] for d in islice(loader, limit)]


def test_img2dataset_output_read_as_is(tmp_path):
    keys = write_img2dataset_shard(tmp_path, 0, 5, failed={2})
    keys += write_img2dataset_shard(tmp_path, 1, 4)
    (tmp_path / '00000.parquet').write_bytes(b'PAR1 not read')
    # The output folder itself: its *.tar files, not the stats or parquet files.
    dataset = _wds(str(tmp_path))
    assert dataset.urls == [str(tmp_path / '00000.tar'), str(tmp_path / '00001.tar')]
    samples = _samples(dataset)
    assert sorted(s.sample_idx for s in samples) == sorted(keys)
    assert all(s.caption == f'caption {s.sample_idx}' for s in samples)  # txt over json
    assert dataset.skipped + sum(s.num_skipped for s in samples) == 1
    assert '000000002' not in {s.sample_idx for s in samples}
    # Without txt the json caption is used; status_key=None keeps failed samples.
    assert len(_samples(_wds(str(tmp_path / '00000.tar'), status_key=None))) == 5
    no_txt = _wds(str(tmp_path / '00001.tar'), text_keys=('json', ))
    assert {s.caption
            for s in _samples(no_txt)} == {f'json caption 00001{i:04d}'
                                           for i in range(4)}


def test_failed_download_is_logged_with_its_error(tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr(wds_module, 'log_skipped', lambda err: logged.append(str(err)))
    write_img2dataset_shard(tmp_path, 0, 3, failed={0, 1})
    samples = _samples(_wds(str(tmp_path / '00000.tar'), shuffle=False))
    assert [s.sample_idx for s in samples] == ['000000002']
    assert samples[0].num_skipped == 2
    assert len(logged) == 2
    assert all(line.startswith('failed_download: ') and 'HTTP 404' in line for line in logged)


def test_shards_from_list_file_pipe_and_fsspec(tmp_path):
    for shard in range(3):
        write_img2dataset_shard(tmp_path, shard, 2)
    tars = [str(tmp_path / f'{s:05d}.tar') for s in range(3)]
    assert expand_shards(str(tmp_path / '{00000..00002}.tar')) == tars
    # A list file: one pattern a line, comments and blanks skipped, paths relative to it.
    sub = tmp_path / 'lists'
    sub.mkdir()
    (sub / 'train.txt').write_text('# my shards\n../00000.tar\n\n' + tars[1] + '\n'
                                   f'pipe:cat {tars[2]}\n')
    urls = expand_shards(str(sub / 'train.txt'))
    assert urls[1:] == [tars[1], f'pipe:cat {tars[2]}']
    assert sorted(s.sample_idx
                  for s in _samples(_wds(str(sub / 'train.txt')))) == sorted(f'{s:05d}{i:04d}'
                                                                             for s in range(3)
                                                                             for i in range(2))
    with pytest.raises(FileNotFoundError, match='list file'):
        expand_shards(str(tmp_path / 'missing.txt'))
    # fsspec URLs: the in-memory filesystem stands in for s3:// / gs:// here.
    import fsspec
    memory = fsspec.filesystem('memory')
    for tar in tars[:2]:
        memory.pipe(f'/shards/{tar[-9:]}', open(tar, 'rb').read())
    memory_keys = [s.sample_idx for s in _samples(_wds('memory://shards/{00000..00001}.tar'))]
    assert sorted(memory_keys) == ['000000000', '000000001', '000010000', '000010001']
    # A missing fsspec shard is a counted skip, as a missing local one.
    dataset = _wds(['memory://shards/00000.tar', 'memory://shards/00009.tar'])
    samples = _samples(dataset)
    assert len(samples) == 2 and dataset.skipped + sum(s.num_skipped for s in samples) == 1


@pytest.mark.parametrize('scheme,package', [('s3', 's3fs'), ('gs', 'gcsfs')])
def test_cloud_urls_need_their_backend(scheme, package):
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f'{package} is installed')
    with pytest.raises(ImportError, match=f'{scheme}:// shards need the fsspec backend'):
        expand_shards(f'{scheme}://bucket/{{00000..00003}}.tar')


def test_unknown_url_scheme_is_refused():
    with pytest.raises(ValueError, match='no fsspec backend for nosuch://'):
        expand_shards('nosuch://bucket/00000.tar')


def _stream(dataset, rank, world_size, monkeypatch, limit=None, num_workers=2):
    """(worker, sample key) of the samples one rank sees through ``num_workers`` workers."""
    monkeypatch.setattr(wds_module, 'get_dist_info', lambda: (rank, world_size))
    samples = _samples(dataset, limit, num_workers=num_workers)
    return [(s.stream_position[0], s.sample_idx) for s in samples]


def test_ranks_times_workers_see_disjoint_samples(tmp_path, monkeypatch):
    keys = []
    for shard in range(8):
        keys += write_img2dataset_shard(tmp_path, shard, 3)
    seen = {}
    for rank in range(2):
        for worker, key in _stream(_wds(str(tmp_path), seed=3), rank, 2, monkeypatch):
            seen.setdefault((rank, worker), []).append(key)
    assert sorted(seen) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    everything = [key for part in seen.values() for key in part]
    assert len(everything) == len(set(everything))  # no sample twice, across ranks x workers
    assert sorted(everything) == sorted(keys)  # and none lost
    # Each part is whole shards: 8 shards over 4 parts, 2 shards (6 samples) each.
    assert all(len(part) == 6 for part in seen.values())


@pytest.mark.slow
def test_resampled_streams_are_endless_and_deterministic(tmp_path, monkeypatch):
    for shard in range(2):
        write_img2dataset_shard(tmp_path, shard, 3)
    pattern = str(tmp_path / '{00000..00001}.tar')
    with pytest.raises(ValueError, match='needs repeat=True'):
        _wds(pattern, resampled=True)

    def stream(rank, world_size, seed=0):
        dataset = _wds(pattern, resampled=True, repeat=True, seed=seed)
        return _stream(dataset, rank, world_size, monkeypatch, limit=40)

    # 2 shards feed 4 ranks x 2 workers; 40 samples are more than 6 x 2 workers: no epoch end.
    first = stream(0, 4)
    assert len(first) == 40
    assert first == stream(0, 4)  # the same every run
    assert first == stream(0, 2)  # and for any world size
    assert stream(1, 4) != first and stream(0, 4, seed=1) != first
    by_worker = [[key for worker, key in first if worker == w] for w in (0, 1)]
    assert by_worker[0] != by_worker[1]
    # Sampling with replacement: over 20 samples a worker meets samples of both shards.
    assert {key[:5] for key in by_worker[0]} == {'00000', '00001'}


def test_resampled_stream_resumes_at_its_position(tmp_path):
    for shard in range(3):
        write_img2dataset_shard(tmp_path, shard, 3)
    dataset = _wds(str(tmp_path), resampled=True, repeat=True, seed=5)
    samples = _samples(dataset, 25)
    resumed = _wds(str(tmp_path), resampled=True, repeat=True, seed=5)
    resumed.resume_at([samples[11].stream_position], num_workers=1)
    assert [s.sample_idx for s in _samples(resumed, 13)] == [s.sample_idx for s in samples[12:]]


def test_resampled_all_bad_shards_fail_instead_of_spinning(tmp_path):
    write_img2dataset_shard(tmp_path, 0, 2, failed={0, 1})
    write_img2dataset_shard(tmp_path, 1, 2, failed={0, 1})
    dataset = _wds(str(tmp_path), resampled=True, repeat=True)
    with pytest.raises(RuntimeError, match='no usable sample'):
        _samples(dataset, 1)
