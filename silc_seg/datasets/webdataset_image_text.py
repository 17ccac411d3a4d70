import glob
import itertools
import json
import math
import multiprocessing
import os.path as osp
import random
import re
from collections import Counter
from typing import Iterator, List, Optional, Sequence, Tuple, Union

from mmengine.dataset import Compose
from mmengine.dist import get_dist_info
from torch.utils.data import IterableDataset, get_worker_info

from silc_seg.registry import DATASETS
from .image_text_utils import (BadSample, decode_image, log_skipped, pick_caption,
                               seeded_global_rngs, valid_boxes, valid_captions)

# Dataloader workers per rank whose pass counts and resume positions fit the shared memory.
MAX_WORKERS = 256
# Resume record per worker process: a flag and a stream_position.
_SLOT = 6

# Local files whose lines list shards (one pattern or URL a line), instead of being a shard.
LIST_FILE_SUFFIXES = ('.txt', '.list', '.lst', '.shards')
# Read by webdataset's own openers (local files, `pipe:` commands, curl for http); any other
# `scheme://` URL is opened through fsspec with the backend of its scheme.
_GOPEN_SCHEMES = ('', 'file', 'pipe', 'http', 'https')


def url_scheme(url: str) -> str:
    """``'pipe'`` for ``pipe:...``, ``'s3'`` for ``s3://...``, ``''`` for a local path."""
    if url.startswith('pipe:'):
        return 'pipe'
    match = re.match(r'^([A-Za-z][A-Za-z0-9+.-]+)://', url)
    return match.group(1).lower() if match else ''


def check_fsspec_backend(scheme: str) -> None:
    """Fail early, and say what to install, when no fsspec backend can open ``scheme://``."""
    try:
        import fsspec
    except ImportError as err:
        raise ImportError(f'{scheme}:// shards are read through fsspec: pip install fsspec '
                          '(and its backend, e.g. s3fs for s3://, gcsfs for gs://)') from err
    try:
        fsspec.get_filesystem_class(scheme)
    except ImportError as err:  # fsspec knows the protocol but its package is missing
        raise ImportError(f'{scheme}:// shards need the fsspec backend of {scheme!r}: {err} '
                          '(or stream them with a pipe: URL, e.g. '
                          f'"pipe:aws s3 cp s3://bucket/00000.tar -")') from err
    except ValueError as err:
        raise ValueError(f'no fsspec backend for {scheme}:// shards ({err}); use a local path, '
                         'a pipe: command or a URL fsspec knows') from err


def _read_list_file(path: str) -> List[str]:
    """Shard patterns of a list file: one a line, blank lines and lines starting with ``#``
    ignored; relative paths are taken relative to the list file."""
    patterns = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            if not url_scheme(line) and not osp.isabs(line):
                line = osp.join(osp.dirname(osp.abspath(path)), line)
            patterns.append(line)
    if not patterns:
        raise ValueError(f'shard list file {path} lists no shard')
    return patterns


def expand_shards(shards: Union[str, Sequence[str]]) -> List[str]:
    """Shard URLs from patterns: brace patterns (``'data/{00000..00099}.tar'``), ``::``-joined
    lists, list files (``*.txt``, ``*.list``, ``*.lst``, ``*.shards``: one pattern a line), a
    directory (its ``*.tar`` files, e.g. an img2dataset output folder), ``pipe:`` commands and
    fsspec URLs (``s3://``, ``gs://``, ... when the backend is installed), or a list of those.

    Raises:
        ValueError: Nothing matches, or a URL scheme no backend handles.
        ImportError: The fsspec backend of a URL scheme is not installed.
    """
    import webdataset as wds
    if isinstance(shards, str):
        shards = [shards]
    urls = []
    for pattern in shards:
        pattern = str(pattern)
        if not url_scheme(pattern) and osp.isdir(pattern):
            found = sorted(glob.glob(osp.join(pattern, '*.tar')))
            if not found:
                raise ValueError(f'no *.tar shard in the directory {pattern}')
            urls.extend(found)
        elif not url_scheme(pattern) and pattern.endswith(LIST_FILE_SUFFIXES):
            if not osp.isfile(pattern):
                raise FileNotFoundError(f'shard list file {pattern} does not exist')
            urls.extend(expand_shards(_read_list_file(pattern)))
        else:
            urls.extend(wds.shardlists.expand_urls(pattern))
    if not urls:
        raise ValueError(f'no shard matches {shards!r}')
    for scheme in sorted({url_scheme(url) for url in urls} - set(_GOPEN_SCHEMES)):
        check_fsspec_backend(scheme)
    return urls


def open_shard(url: str):
    """A binary stream of shard ``url``: webdataset's ``gopen`` for local paths, ``pipe:``
    and http(s); fsspec for other schemes."""
    if url_scheme(url) in _GOPEN_SCHEMES:
        from webdataset.gopen import gopen
        return gopen(url)
    import fsspec
    return fsspec.open(url, 'rb').open()


def shards_for(urls: Sequence[str], epoch: int, seed: int, rank: int, world_size: int,
               worker_id: int, num_workers: int, shuffle: bool) -> List[str]:
    """The shards one dataloader worker of one rank reads in ``epoch``.

    Every worker shuffles the full list with the same ``(seed, epoch)`` and takes every
    ``world_size * num_workers``-th shard from its own offset, so the parts are disjoint and
    together cover all shards, and the assignment changes every epoch.
    """
    urls = list(urls)
    if shuffle:
        random.Random(seed * 100003 + epoch).shuffle(urls)
    num_parts = world_size * num_workers
    return urls[rank * num_workers + worker_id::num_parts]


def resampled_shards_for(urls: Sequence[str], draw: int, seed: int, rank: int,
                         worker_id: int) -> List[str]:
    """Draw ``draw`` of one worker of one rank in resampled mode: ``len(urls)`` shards drawn
    with replacement, from a generator seeded by ``(seed, rank, worker_id, draw)`` alone.

    Each worker's stream of shards is endless (draw after draw, no epoch boundary), the same
    every run, and independent of the other workers and ranks and of the world size (as
    webdataset's ``ResampledShards``, but seeded per rank and worker and resumable).
    """
    rng = random.Random(hash((seed, rank, worker_id, draw, 'resampled')))
    return [urls[rng.randrange(len(urls))] for _ in range(len(urls))]


class _TarEndChecker:
    """Pass-through reader that tells whether an uncompressed tar was cut short.

    ``tarfile`` in stream mode treats a partial header block as the end of the archive, so a shard
    truncated between or inside headers reads without error; a complete one ends with zero
    blocks (the end-of-archive marker) and a length that is a multiple of 512.
    """

    def __init__(self, stream) -> None:
        self.stream = stream
        self.total = 0
        self.head = b''
        self.tail = b''

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.total += len(data)
        if len(self.head) < 512:
            self.head = (self.head + data)[:512]
        self.tail = (self.tail + data)[-1024:]
        return data

    def check_end(self) -> None:
        while self.read(1 << 20):
            pass
        is_plain_tar = self.head[257:262] == b'ustar'
        if is_plain_tar and (self.total % 512 or self.tail.strip(b'\0')):
            raise EOFError('truncated tar: no end-of-archive marker')


@DATASETS.register_module()
class WebDatasetImageText(IterableDataset):
    """Image-text pairs streamed from WebDataset tar shards.

    Each sample of a shard is a group of files sharing a key, with an image (``jpg``, ``jpeg``,
    ``png`` or ``webp``) and a caption (``txt``, or ``json`` with a ``caption`` field, optionally
    a list of extra captions under ``extra_captions`` and regions under ``boxes``: a list of
    ``{"box": [x0, y0, x1, y1], "text": ...}``, normalised coordinates, as
    :class:`ImageTextManifestDataset`; malformed ones skip the sample as ``invalid_boxes``).
    img2dataset's WebDataset output reads as is: ``jpg`` + ``txt`` + ``json`` metadata, whose
    ``key`` becomes the ``sample_idx`` and whose ``status`` other than ``'success'`` skips the
    sample (counted as ``failed_download``).
    Shards are split between ranks and dataloader workers (see :func:`shards_for`) and
    reshuffled every epoch; with ``resampled=True`` every worker instead draws shards with
    replacement, endlessly (see :func:`resampled_shards_for`). Samples are shuffled within
    blocks of ``shuffle_buffer``. All randomness derives from ``seed``, the epoch, the rank
    and the worker, so a run repeats exactly for the same world size and ``num_workers``: each
    sample's caption choice and augmentations draw from global generators seeded by its stream
    position (:func:`~silc_seg.datasets.image_text_utils.seeded_global_rngs`), so they do not
    depend on what the worker processed before, and a resumed run draws the same crops.

    Every sample carries its ``stream_position`` ``(worker_id, epoch, shard, offset,
    consumed)``: the block it came from (the shard's index in the worker's list for the epoch
    and the index of the block's first sample in that shard) and how many of the block's samples
    have been emitted. :meth:`resume_at` restarts each worker there by reading one block, without
    decoding anything before it; :class:`~silc_seg.engine.hooks.StreamResumeHook` saves the
    positions in checkpoints and restores them on ``--resume``.

    Bad samples (no image, undecodable image, empty or non-text caption) and missing
    (``missing_shard``), unreadable or truncated (``corrupt_shard``) shards are logged and
    skipped; the count of skips before a good sample travels as its ``num_skipped`` (see
    :mod:`silc_seg.datasets.image_text_utils`). The samples of a truncated shard before the damage
    are kept. A pass over all of a worker's shards that yields no usable sample (e.g. a mistyped
    ``shards`` pattern) raises a ``RuntimeError`` with the skip counts instead of spinning.

    Args:
        shards (str | list[str]): Shard paths or URLs with brace expansion, e.g.
            ``'data/webli/{00000..01023}.tar'``; a list file (one pattern a line), a directory
            of ``*.tar``, ``pipe:`` commands, or fsspec URLs (``s3://``, ``gs://``, ... with the
            backend installed). See :func:`expand_shards`.
        pipeline (list[dict]): Transforms applied to each decoded sample (the first sees
            ``img``, ``caption``, ``img_path``, ``sample_idx``, ``ori_shape``, ``img_shape``).
        repeat (bool): Stream forever, moving to the next epoch after each pass (for
            ``IterBasedTrainLoop``). If False, one ``__iter__`` is one pass over one epoch; the
            dataset counts the passes itself, so each is the next epoch (no hook or sampler
            needs to call :meth:`set_epoch`). Defaults to True.
        shuffle (bool): Shuffle shards per epoch and samples within blocks. Defaults to True.
        resampled (bool): Draw each worker's shards with replacement from all shards, seeded by
            ``(seed, rank, worker)``, forever (no epoch boundary; for multi-node runs, where
            ranks would otherwise finish epochs at different times, and for fewer shards than
            ranks x workers). Needs ``repeat=True``. Defaults to False.
        shuffle_buffer (int): Samples per shuffled block, per worker: each worker reads this
            many (undecoded) samples, shuffles them with a generator seeded by the block's start
            and decodes them in that order. Defaults to 1000.
        seed (int): Base seed. Defaults to 0.
        image_keys (Sequence[str]): Accepted image extensions, in order of preference.
        text_keys (Sequence[str]): Accepted caption extensions, in order of preference.
        json_caption_key (str): Caption field of ``json`` captions. Defaults to ``'caption'``.
        json_extra_captions_key (str): Extra captions field of ``json``.
            Defaults to ``'extra_captions'``.
        status_key (str, optional): Metadata (``json``) field that marks failed downloads
            (img2dataset's ``status``); None to ignore it. Defaults to ``'status'``.
        num_samples (int, optional): Samples per epoch over all ranks, for ``len()`` (used by
            epoch-based schedulers and ``EpochBasedTrainLoop`` with ``repeat=False``).
        color_type (str): ``mmcv.imfrombytes`` flag. Defaults to ``'color'``.
        imdecode_backend (str): ``mmcv.imfrombytes`` backend. Defaults to ``'cv2'``.
    """

    def __init__(self,
                 shards: Union[str, Sequence[str]],
                 pipeline: Sequence[dict] = (),
                 repeat: bool = True,
                 shuffle: bool = True,
                 resampled: bool = False,
                 shuffle_buffer: int = 1000,
                 seed: int = 0,
                 image_keys: Sequence[str] = ('jpg', 'jpeg', 'png', 'webp'),
                 text_keys: Sequence[str] = ('txt', 'json'),
                 json_caption_key: str = 'caption',
                 json_extra_captions_key: str = 'extra_captions',
                 status_key: Optional[str] = 'status',
                 num_samples: Optional[int] = None,
                 color_type: str = 'color',
                 imdecode_backend: str = 'cv2') -> None:
        if resampled and not repeat:
            raise ValueError('resampled=True streams forever (no epoch boundary): it needs '
                             'repeat=True')
        self.urls = expand_shards(shards)
        self.resampled = resampled
        self.status_key = status_key
        self.pipeline = Compose(pipeline)
        self.repeat = repeat
        self.shuffle = shuffle
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.image_keys = tuple(image_keys)
        self.text_keys = tuple(text_keys)
        self.json_caption_key = json_caption_key
        self.json_extra_captions_key = json_extra_captions_key
        self.num_samples = num_samples
        self.color_type = color_type
        self.imdecode_backend = imdecode_backend
        # Shared with the dataloader workers (persistent or not): the first epoch, the passes
        # each worker has started since, and one resume record per worker (see resume_at).
        self._epoch = multiprocessing.Value('i', 0)
        self._passes = multiprocessing.Array('i', MAX_WORKERS)
        self._resume = multiprocessing.Array('q', MAX_WORKERS * _SLOT, lock=False)
        self.skipped = 0
        # Skips of the current pass by reason (and one source each), for the empty-pass error.
        self._pass_skips: Counter = Counter()
        self._pass_examples: dict = {}

    @property
    def metainfo(self) -> dict:
        return dict(dataset_type='WebDatasetImageText', num_shards=len(self.urls))

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass epoch ``epoch`` (shard order and assignment); later passes count
        on from it. Not needed for training: every pass is a new epoch by itself."""
        with self._passes.get_lock():
            self._epoch.value = epoch
            self._passes[:] = [0] * MAX_WORKERS

    def __len__(self) -> int:
        """``num_samples`` per rank; without it, a nominal ``2**31`` (an endless stream).

        MMEngine asks every train dataloader for its length to set up schedulers; only
        schedulers with ``by_epoch=True`` use it, and they need ``num_samples``.
        """
        if self.num_samples is None:
            return 2**31
        return math.ceil(self.num_samples / get_dist_info()[1])

    def _read_shard(self, url: str) -> Iterator[dict]:
        """Yield the raw samples of one shard; a read error ends the shard with BadSample."""
        from webdataset.tariterators import group_by_keys, tar_file_iterator

        def files(stream):
            for item in tar_file_iterator(stream):
                item['__url__'] = url
                yield item

        try:
            with open_shard(url) as raw_stream:
                stream = _TarEndChecker(raw_stream)
                yield from group_by_keys(files(stream))
                stream.check_end()
        except FileNotFoundError as err:  # a mistyped path or a shard not yet copied
            raise BadSample('missing_shard', url, err.strerror or repr(err)) from err
        except Exception as err:  # tarfile, gzip, IO and network errors
            # webdataset appends " @ <stream object>" to the message: the url says it better.
            message = str(err).split(' @ <')[0]
            raise BadSample('corrupt_shard', url, f'{type(err).__name__}: {message}') from err

    def _decode(self, raw: dict) -> dict:
        source = f'{raw["__url__"]}:{raw["__key__"]}'
        image_key = next((k for k in self.image_keys if k in raw), None)
        if image_key is None:
            raise BadSample('missing_image', source, f'no {"/".join(self.image_keys)} file')
        text_key = next((k for k in self.text_keys if k in raw), None)
        if text_key is None:
            raise BadSample('empty_caption', source, f'no {"/".join(self.text_keys)} file')
        meta = {}
        try:
            if 'json' in raw:
                try:
                    meta = json.loads(raw['json'].decode('utf-8'))
                    if not isinstance(meta, dict):
                        raise TypeError(f'json is a {type(meta).__name__}, not an object')
                except (UnicodeDecodeError, json.JSONDecodeError, TypeError):
                    if text_key == 'json':
                        raise
                    meta = {}  # unreadable metadata beside a txt caption: keep the sample
            if text_key == 'json':
                captions = [meta.get(self.json_caption_key)]
                extra = meta.get(self.json_extra_captions_key) or []
                captions += extra if isinstance(extra, list) else [extra]
            else:
                captions = [raw[text_key].decode('utf-8')]
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, TypeError) as err:
            raise BadSample('invalid_caption', source, repr(err)) from err
        # img2dataset's metadata: a sample whose download did not succeed has no usable image.
        status = meta.get(self.status_key, 'success') if self.status_key else 'success'
        if status != 'success':
            raise BadSample('failed_download', source,
                            f'status {status!r}: {meta.get("error_message") or "-"}')
        captions = valid_captions(captions, source)
        boxes = valid_boxes(meta.get('boxes'), source) if 'boxes' in meta else None
        img = decode_image(raw[image_key], source, self.color_type, self.imdecode_backend)
        sample = dict(
            img=img,
            img_path=source,
            sample_idx=str(meta.get('key') or raw['__key__']),
            caption=pick_caption(captions),
            ori_shape=img.shape[:2],
            img_shape=img.shape[:2])
        if boxes is not None:
            sample['boxes'] = boxes
        return sample

    def _skip(self, err: BadSample) -> None:
        log_skipped(err)
        self.skipped += 1
        self._pass_skips[err.reason] += 1
        self._pass_examples.setdefault(err.reason, err.source)

    def _raw_samples(self, urls: Sequence[str], shard: int,
                     offset: int) -> Iterator[Tuple[int, int, dict]]:
        """``(shard index, index in the shard, raw sample)`` of ``urls`` from ``(shard, offset)``
        on; the raw samples before ``offset`` are read but not decoded. A shard that cannot be
        read (or breaks off) is counted as skipped and the next one follows."""
        for index in range(shard, len(urls)):
            position = 0
            try:
                for raw in self._read_shard(urls[index]):
                    if index > shard or position >= offset:
                        yield index, position, raw
                    position += 1
            except BadSample as err:
                self._skip(err)

    def _epoch_samples(self, urls: Sequence[str], epoch: int, rank: int, worker_id: int,
                       start: Tuple[int, int, int]) -> Iterator[Tuple[dict, tuple]]:
        """Raw (undecoded) samples of one epoch with the stream position after each.

        Raw samples are taken in blocks of ``shuffle_buffer``; each block is shuffled with a
        generator seeded by the block's start (shard and index in the shard) and emitted in
        that order. A position ``(shard, offset, consumed)`` (block start and samples of the
        block already emitted) thus rebuilds the stream exactly by reading one block.
        """
        shard, offset, consumed = start
        raw_samples = self._raw_samples(urls, shard, offset)
        block_size = max(self.shuffle_buffer, 1) if self.shuffle else 1
        while True:
            block = list(itertools.islice(raw_samples, block_size))
            if not block:
                return
            block_start = block[0][:2]
            order = list(range(len(block)))
            if self.shuffle:
                random.Random(hash((self.seed, epoch, rank, worker_id) +
                                   block_start)).shuffle(order)
            for step in range(consumed, len(order)):
                yield block[order[step]][2], block_start + (step + 1, )
            consumed = 0

    def __iter__(self) -> Iterator[dict]:
        rank, world_size = get_dist_info()
        worker = get_worker_info()
        worker_id, num_workers = (0, 1) if worker is None else (worker.id, worker.num_workers)
        if not self.resampled and len(self.urls) < world_size * num_workers:
            raise ValueError(
                f'{len(self.urls)} shards cannot feed {world_size} ranks x {num_workers} '
                'dataloader workers (each needs at least one shard); use more shards, '
                'fewer workers or resampled=True')
        if worker_id >= MAX_WORKERS:
            raise ValueError(f'at most {MAX_WORKERS} dataloader workers per rank')
        # The dataset counts its own passes (one __iter__ per pass and worker) in memory shared
        # with the workers, so every pass is a new epoch without anyone calling set_epoch.
        with self._passes.get_lock():
            epoch = self._epoch.value + self._passes[worker_id]
            self._passes[worker_id] += 1
            start = (0, 0, 0)
            slot = worker_id * _SLOT
            resume = self._resume[slot:slot + _SLOT]
            if resume[0]:  # once: later passes start at the beginning of their epoch
                # This process continues the stream of worker resume[1] (see resume_at).
                worker_id, epoch, start = resume[1], resume[2], tuple(resume[3:])
                self._resume[slot] = 0
        empty_urls = set()  # resampled: shards of the passes without a usable sample since
        while True:
            if self.resampled:
                urls = resampled_shards_for(self.urls, epoch, self.seed, rank, worker_id)
            else:
                urls = shards_for(self.urls, epoch, self.seed, rank, world_size, worker_id,
                                  num_workers, self.shuffle)
            self._pass_skips, self._pass_examples = Counter(), {}
            num_good = 0
            for raw, position in self._epoch_samples(urls, epoch, rank, worker_id, start):
                stream_position = (worker_id, epoch) + position
                # Caption choice and augmentations drawn from the sample's place in the stream
                # (not from how much the worker read before): the same on --resume.
                with seeded_global_rngs(
                    (self.seed, rank) + stream_position, restore=worker is None):
                    try:
                        results = self._decode(raw)
                    except BadSample as err:
                        self._skip(err)
                        continue
                    results['num_skipped'] = self.skipped
                    results['stream_position'] = stream_position
                    data = self.pipeline(results)
                if data is None:
                    self._skip(BadSample('dropped_by_pipeline', results['img_path']))
                    continue
                self.skipped = 0
                num_good += 1
                yield data
            if self.resampled:
                # A draw can hit only bad shards by chance: fail once every shard has been
                # drawn without a usable sample.
                empty_urls = empty_urls | set(urls) if num_good == 0 else set()
                if len(empty_urls) == len(set(self.urls)):
                    self._raise_empty_pass(urls, epoch, rank, worker_id)
            elif num_good == 0 and start == (0, 0, 0):
                self._raise_empty_pass(urls, epoch, rank, worker_id)
            if not self.repeat:
                return
            epoch += 1
            start = (0, 0, 0)

    def resume_at(self,
                  positions: Sequence[Sequence[int]],
                  num_workers: int,
                  next_worker: int = 0) -> None:
        """Start the next pass of each worker right after a saved sample, without replaying.

        A ``DataLoader`` takes batches from its workers in turn, starting with worker 0; the
        stream continues with the batch of worker ``next_worker``, so the worker processes
        take over the streams of the saved workers rotated by ``next_worker`` (process 0
        continues worker ``next_worker``'s stream, and so on).

        Call it while no dataloader iteration over this dataset is running (see
        :class:`~silc_seg.engine.hooks.StreamResumeHook`): a worker reads its position when its
        next pass starts. Later passes continue with the following epochs.

        Args:
            positions (Sequence[Sequence[int]]): ``stream_position`` values as the samples carry
                them, the last one seen of each worker: ``(worker_id, epoch, shard, offset,
                consumed)``. A worker without one starts at the beginning of the earliest epoch.
            num_workers (int): Dataloader workers per rank (1 without worker processes), as
                when the positions were saved.
            next_worker (int): The worker whose batch comes next: the one after the worker of
                the last batch taken. Defaults to 0.
        """
        positions = {int(p[0]): tuple(int(v) for v in p) for p in positions}
        if not 1 <= num_workers <= MAX_WORKERS or any(not 0 <= worker_id < num_workers
                                                      for worker_id in positions):
            raise ValueError(f'positions {sorted(positions.values())} do not fit '
                             f'{num_workers} workers (at most {MAX_WORKERS})')
        first_epoch = min((p[1] for p in positions.values()), default=self._epoch.value)
        with self._passes.get_lock():
            self._epoch.value = first_epoch
            self._passes[:] = [0] * MAX_WORKERS
            for process in range(num_workers):
                worker_id = (process + next_worker) % num_workers
                position = positions.get(worker_id, (worker_id, first_epoch, 0, 0, 0))
                self._resume[process * _SLOT:(process + 1) * _SLOT] = [1, *position]

    def _raise_empty_pass(self, urls: Sequence[str], epoch: int, rank: int,
                          worker_id: int) -> None:
        """A pass over all shards without one usable sample: repeating it would spin forever."""
        reasons = ', '.join(f'{count} {reason}'
                            for reason, count in self._pass_skips.most_common())
        examples = '; '.join(f'{reason}: {source}'
                             for reason, source in self._pass_examples.items())
        raise RuntimeError(
            f'WebDatasetImageText: no usable sample in a full pass over {len(urls)} shard(s) '
            f'(epoch {epoch}, rank {rank}, dataloader worker {worker_id}; skipped: '
            f'{reasons or "nothing"}; e.g. {examples or "-"}). Check `shards` '
            f'({self.urls[0]}{", ..." if len(self.urls) > 1 else ""}) and the pipeline.')

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_shards={len(self.urls)}, '
                f'repeat={self.repeat}, shuffle={self.shuffle}, resampled={self.resampled}, '
                f'seed={self.seed})')
