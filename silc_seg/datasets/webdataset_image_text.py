import json
import math
import multiprocessing
import random
from collections import Counter
from typing import Iterator, List, Optional, Sequence, Union

from mmengine.dataset import Compose
from mmengine.dist import get_dist_info
from torch.utils.data import IterableDataset, get_worker_info

from silc_seg.registry import DATASETS
from .image_text_utils import (BadSample, decode_image, log_skipped,
                               pick_caption, valid_captions)


def expand_shards(shards: Union[str, Sequence[str]]) -> List[str]:
    """Expand brace patterns (``'data/{000..099}.tar'``), ``::``-joined lists and lists."""
    import webdataset as wds
    if isinstance(shards, str):
        shards = [shards]
    urls = []
    for pattern in shards:
        urls.extend(wds.shardlists.expand_urls(pattern))
    if not urls:
        raise ValueError(f'no shard matches {shards!r}')
    return urls


def shards_for(urls: Sequence[str], epoch: int, seed: int, rank: int,
               world_size: int, worker_id: int, num_workers: int,
               shuffle: bool) -> List[str]:
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
    a list of extra captions under ``extra_captions``). Shards are split between ranks and
    dataloader workers (see :func:`shards_for`) and reshuffled every epoch; samples are shuffled
    within a buffer. All randomness derives from ``seed``, the epoch, the rank and the worker, so a
    run repeats exactly for the same world size and ``num_workers``.

    Bad samples (no image, undecodable image, empty or non-text caption) and missing
    (``missing_shard``), unreadable or truncated (``corrupt_shard``) shards are logged and
    skipped; the count of skips before a good sample travels as its ``num_skipped`` (see
    :mod:`silc_seg.datasets.image_text_utils`). The samples of a truncated shard before the damage
    are kept. A pass over all of a worker's shards that yields no usable sample (e.g. a mistyped
    ``shards`` pattern) raises a ``RuntimeError`` with the skip counts instead of spinning.

    Args:
        shards (str | list[str]): Shard paths or URLs (anything ``webdataset.gopen`` opens),
            with brace expansion, e.g. ``'data/webli/{00000..01023}.tar'``.
        pipeline (list[dict]): Transforms applied to each decoded sample (the first sees
            ``img``, ``caption``, ``img_path``, ``sample_idx``, ``ori_shape``, ``img_shape``).
        repeat (bool): Stream forever, moving to the next epoch after each pass (for
            ``IterBasedTrainLoop``). If False, one ``__iter__`` is one pass over the epoch set by
            :meth:`set_epoch`. Defaults to True.
        shuffle (bool): Shuffle shards per epoch and samples within a buffer. Defaults to True.
        shuffle_buffer (int): Sample shuffle buffer size per worker. Defaults to 1000.
        seed (int): Base seed. Defaults to 0.
        image_keys (Sequence[str]): Accepted image extensions, in order of preference.
        text_keys (Sequence[str]): Accepted caption extensions, in order of preference.
        json_caption_key (str): Caption field of ``json`` captions. Defaults to ``'caption'``.
        json_extra_captions_key (str): Extra captions field of ``json``.
            Defaults to ``'extra_captions'``.
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
                 shuffle_buffer: int = 1000,
                 seed: int = 0,
                 image_keys: Sequence[str] = ('jpg', 'jpeg', 'png', 'webp'),
                 text_keys: Sequence[str] = ('txt', 'json'),
                 json_caption_key: str = 'caption',
                 json_extra_captions_key: str = 'extra_captions',
                 num_samples: Optional[int] = None,
                 color_type: str = 'color',
                 imdecode_backend: str = 'cv2') -> None:
        self.urls = expand_shards(shards)
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
        # Shared with the dataloader workers, so set_epoch reaches persistent workers too.
        self._epoch = multiprocessing.Value('i', 0)
        self.skipped = 0
        # Skips of the current pass by reason (and one source each), for the empty-pass error.
        self._pass_skips: Counter = Counter()
        self._pass_examples: dict = {}

    @property
    def metainfo(self) -> dict:
        return dict(dataset_type='WebDatasetImageText', num_shards=len(self.urls))

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (shard order and assignment) of the next pass."""
        self._epoch.value = epoch

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
        from webdataset.gopen import gopen
        from webdataset.tariterators import group_by_keys, tar_file_iterator

        def files(stream):
            for item in tar_file_iterator(stream):
                item['__url__'] = url
                yield item

        try:
            with gopen(url) as raw_stream:
                stream = _TarEndChecker(raw_stream)
                yield from group_by_keys(files(stream))
                stream.check_end()
        except FileNotFoundError as err:  # a mistyped path or a shard not yet copied
            raise BadSample('missing_shard', url, repr(err)) from err
        except Exception as err:  # tarfile, gzip, IO and network errors
            raise BadSample('corrupt_shard', url, repr(err)) from err

    def _decode(self, raw: dict) -> dict:
        source = f'{raw["__url__"]}:{raw["__key__"]}'
        image_key = next((k for k in self.image_keys if k in raw), None)
        if image_key is None:
            raise BadSample('missing_image', source,
                            f'no {"/".join(self.image_keys)} file')
        text_key = next((k for k in self.text_keys if k in raw), None)
        if text_key is None:
            raise BadSample('empty_caption', source,
                            f'no {"/".join(self.text_keys)} file')
        try:
            text = raw[text_key].decode('utf-8')
            if text_key == 'json':
                meta = json.loads(text)
                captions = [meta.get(self.json_caption_key)]
                extra = meta.get(self.json_extra_captions_key) or []
                captions += extra if isinstance(extra, list) else [extra]
            else:
                captions = [text]
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as err:
            raise BadSample('invalid_caption', source, repr(err)) from err
        captions = valid_captions(captions, source)
        img = decode_image(raw[image_key], source, self.color_type,
                           self.imdecode_backend)
        return dict(
            img=img,
            img_path=source,
            sample_idx=raw['__key__'],
            caption=pick_caption(captions),
            ori_shape=img.shape[:2],
            img_shape=img.shape[:2])

    def _skip(self, err: BadSample) -> None:
        log_skipped(err)
        self.skipped += 1
        self._pass_skips[err.reason] += 1
        self._pass_examples.setdefault(err.reason, err.source)

    def _samples(self, urls: Sequence[str]) -> Iterator[dict]:
        """Decoded good samples of ``urls``, counting bad ones in ``self.skipped``."""
        for url in urls:
            shard = self._read_shard(url)
            while True:
                try:
                    raw = next(shard)
                except StopIteration:
                    break
                except BadSample as err:
                    self._skip(err)
                    break
                try:
                    yield self._decode(raw)
                except BadSample as err:
                    self._skip(err)

    def _shuffled(self, samples: Iterator[dict],
                  rng: random.Random) -> Iterator[dict]:
        if not self.shuffle or self.shuffle_buffer <= 1:
            yield from samples
            return
        buffer = []
        for sample in samples:
            buffer.append(sample)
            if len(buffer) >= self.shuffle_buffer:
                yield buffer.pop(rng.randrange(len(buffer)))
        rng.shuffle(buffer)
        yield from buffer

    def __iter__(self) -> Iterator[dict]:
        rank, world_size = get_dist_info()
        worker = get_worker_info()
        worker_id, num_workers = (0, 1) if worker is None else (worker.id,
                                                                 worker.num_workers)
        if len(self.urls) < world_size * num_workers:
            raise ValueError(
                f'{len(self.urls)} shards cannot feed {world_size} ranks x {num_workers} '
                'dataloader workers (each needs at least one shard); use more shards or '
                'fewer workers')
        epoch = self._epoch.value
        while True:
            urls = shards_for(self.urls, epoch, self.seed, rank, world_size,
                              worker_id, num_workers, self.shuffle)
            rng = random.Random(
                hash((self.seed, epoch, rank, worker_id)) & 0xFFFFFFFF)
            self._pass_skips, self._pass_examples = Counter(), {}
            num_good = 0
            for results in self._shuffled(self._samples(urls), rng):
                results['num_skipped'] = self.skipped
                data = self.pipeline(results)
                if data is None:
                    self._skip(BadSample('dropped_by_pipeline', results['img_path']))
                    continue
                self.skipped = 0
                num_good += 1
                yield data
            if num_good == 0:
                self._raise_empty_pass(urls, epoch, rank, worker_id)
            if not self.repeat:
                return
            epoch += 1

    def _raise_empty_pass(self, urls: Sequence[str], epoch: int, rank: int,
                          worker_id: int) -> None:
        """A pass over all shards without one usable sample: repeating it would spin forever."""
        reasons = ', '.join(f'{count} {reason}' for reason, count in self._pass_skips.most_common())
        examples = '; '.join(f'{reason}: {source}'
                             for reason, source in self._pass_examples.items())
        raise RuntimeError(
            f'WebDatasetImageText: no usable sample in a full pass over {len(urls)} shard(s) '
            f'(epoch {epoch}, rank {rank}, dataloader worker {worker_id}; skipped: '
            f'{reasons or "nothing"}; e.g. {examples or "-"}). Check `shards` '
            f'({self.urls[0]}{", ..." if len(self.urls) > 1 else ""}) and the pipeline.')

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_shards={len(self.urls)}, '
                f'repeat={self.repeat}, shuffle={self.shuffle}, seed={self.seed})')
