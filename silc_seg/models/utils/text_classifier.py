"""The class-vocabulary text classifier shared by zero-shot classification (``SILC``),
zero-shot segmentation (``ZeroShotSegmentor``) and CAT-Seg (``CATSeg``).

It turns class names (with synonyms), prompt templates, a text tower and its tokenizer into
L2-normalized class embeddings, CLIP's zero-shot classifier recipe (Radford et al., 2021): every
prompt ``template.format(name)`` is embedded and normalized, then names and templates are
combined as configured.

One cache, one invalidation rule: :meth:`TextClassifier.__call__` returns the embeddings of the
last request again while the request (vocabulary, templates, name rule, template reduction) and
the tower's :meth:`~TextClassifier.weights_version` are unchanged. The weights version is a
fingerprint of the tower's tensors (device, dtype, shape, sum and L2 norm of each) and a counter
of ``load_state_dict`` calls on the tower, so optimizer steps, EMA updates, in-place
edits, device moves and checkpoint loads all invalidate the cache without anyone clearing it.
An in-place edit that keeps every tensor's sum and norm (e.g. swapping two rows, or a change below
float32 rounding of the sums) is not detected: call :meth:`~TextClassifier.invalidate` after such
an edit. Embeddings computed under autocast (fp16/bf16) are kept apart from fp32 ones. Inside
:meth:`~TextClassifier.frozen` (an evaluation loop, where nothing changes the weights) the
fingerprint is taken once, on the first request, instead of on every request.

Building the embeddings of a large vocabulary (ADE-150 x 80 templates: 12,000 prompts, minutes
for a B text tower on CPU) shows its progress: a progress bar on a terminal, a few log lines
otherwise (from ``progress_min_prompts`` prompts on; :meth:`TextClassifier.encode`, the
differentiable path of training, stays quiet).

Optionally the embeddings are also stored on disk (``cache_dir``, or the environment variable
``SILC_SEG_TEXT_CACHE_DIR``), keyed by a SHA-256 of the tower's weights and settings and of the
token ids of every prompt; files are read back with ``torch.load(weights_only=True)``.
"""
import hashlib
import os
import os.path as osp
import pickle
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from typing import Callable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.dist import get_rank
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from torch import Tensor, nn

from .prompt_templates import get_prompt_templates

NAME_RULES = ('separate', 'average', 'first')
TEMPLATE_REDUCTIONS = ('mean', 'none')
CACHE_DIR_ENV = 'SILC_SEG_TEXT_CACHE_DIR'
_CACHE_FORMAT = 1


class ClassEmbeddings(NamedTuple):
    """Output of :class:`TextClassifier`.

    Attributes:
        embeddings (Tensor): ``(Q, D)`` (template reduction ``'mean'``) or ``(Q, P, D)``
            (``'none'``, one embedding per template) L2-normalized embeddings.
        query_to_class (list[int]): the class index of each of the ``Q`` rows (with the name
            rule ``'separate'`` a class has one row per synonym; otherwise ``Q`` is the number
            of classes and this is ``[0, 1, ...]``).
    """
    embeddings: Tensor
    query_to_class: List[int]


class TextClassifier:
    """Class embeddings of a vocabulary from a text tower, with one cache.

    The classifier is not an ``nn.Module``: it refers to the owner's tower and tokenizer
    without registering them again (checkpoint keys stay ``text_encoder.*``).

    For a class ``c`` with names ``n_1..n_S`` and templates ``t_1..t_P``, let
    ``e(s, p) = normalize(tower(tokenize(t_p.format(n_s))))``. Name rules:

    - ``'separate'``: every name is its own query, ``q(s, p) = e(s, p)`` (the caller merges the
      queries of a class, e.g. max over the synonyms' probabilities as SCLIP does);
    - ``'average'``: ``q(c, p) = normalize(sum_s e(s, p))``;
    - ``'first'``: ``q(c, p) = e(1, p)``, the first name only.

    Template reductions: ``'mean'`` gives ``normalize(mean_p q(., p))``, ``'none'`` keeps every
    template, ``normalize(q(., p))``.

    Args:
        text_encoder (nn.Module): ``text_encoder(token_ids (N, L)) -> (N, D)``. If it has a
            ``trim_padding(token_ids)`` method (``SILCTextTransformer``), every batch goes
            through it: the tower drops padding columns only where that provably leaves the
            output unchanged.
        tokenizer (callable): ``tokenizer(list_of_str) -> LongTensor (N, L)``.
        templates (str | Sequence[str]): prompt templates (see
            :func:`~silc_seg.models.utils.get_prompt_templates`).
        name_rule (str): ``'separate'``, ``'average'`` or ``'first'``.
        template_reduction (str): ``'mean'`` or ``'none'``.
        batch_size (int): prompts per tokenizer call and tower forward.
        cache_dir (str, optional): directory of the on-disk cache; defaults to the environment
            variable ``SILC_SEG_TEXT_CACHE_DIR``; if neither is set, nothing is stored on disk.
    """

    # Fewer prompts than this are encoded without progress output.
    progress_min_prompts = 1024

    def __init__(self,
                 text_encoder: nn.Module,
                 tokenizer: Callable[[List[str]], Tensor],
                 templates: Union[str, Sequence[str]] = 'imagenet80',
                 name_rule: str = 'separate',
                 template_reduction: str = 'mean',
                 batch_size: int = 256,
                 cache_dir: Optional[str] = None):
        if name_rule not in NAME_RULES:
            raise ValueError(f'unknown name_rule {name_rule!r}; choose from {NAME_RULES}')
        if template_reduction not in TEMPLATE_REDUCTIONS:
            raise ValueError(f'unknown template_reduction {template_reduction!r}; choose from '
                             f'{TEMPLATE_REDUCTIONS}')
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        if tokenizer is None:
            raise ValueError('the text classifier needs a tokenizer')
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.templates = get_prompt_templates(templates)
        self.name_rule = name_rule
        self.template_reduction = template_reduction
        self.batch_size = batch_size
        cache_dir = cache_dir if cache_dir is not None else os.environ.get(CACHE_DIR_ENV)
        self.cache_dir = osp.expanduser(cache_dir) if cache_dir else None
        self._num_loads = 0
        self._cache: Optional[tuple] = None
        self._frozen = 0  # depth of nested frozen() blocks
        self._checked_while_frozen = False
        # A bound method, so that a deep copy of the owner model gets a hook on its own copy.
        text_encoder.register_load_state_dict_post_hook(self._count_load)

    # ------------------------------------------------------------------------------- encoding
    def prompts(self, vocabulary: Sequence[Sequence[str]]) -> Tuple[List[str], List[int]]:
        """The prompts of the names that the name rule keeps.

        Args:
            vocabulary (Sequence[Sequence[str]]): the names (synonyms) of each class.

        Returns:
            tuple[list[str], list[int]]: every prompt (name-major, template-minor) and the class
            index of each kept name.
        """
        prompts, owners = [], []
        for class_index, names in enumerate(vocabulary):
            if not names:
                raise ValueError(f'class {class_index} has no name')
            for name in (names[:1] if self.name_rule == 'first' else names):
                prompts.extend(template.format(name) for template in self.templates)
                owners.append(class_index)
        return prompts, owners

    def query_to_class(self, vocabulary: Sequence[Sequence[str]]) -> List[int]:
        """The class index of each embedding row for ``vocabulary`` (no tower involved).

        Args:
            vocabulary (Sequence[Sequence[str]]): the names (synonyms) of each class.

        Returns:
            list[int]: one class index per query (per name with ``'separate'``, else per class).
        """
        if self.name_rule == 'separate':
            return [index for index, names in enumerate(vocabulary) for _ in names]
        return list(range(len(vocabulary)))

    def _tokenize(self, prompts: List[str]) -> List[Tensor]:
        batches, cut = [], []
        for start in range(0, len(prompts), self.batch_size):
            batches.append(self.tokenizer(prompts[start:start + self.batch_size]))
            cut += getattr(self.tokenizer, 'last_truncated', [])
        if cut:  # the end of a long class name would be lost without a sign
            warnings.warn(
                f'{len(cut)} of {len(prompts)} prompts are longer than the text context '
                f'({getattr(self.tokenizer, "context_length", "?")} tokens) and were cut, e.g. '
                f'{cut[0]!r}: shorten those class names (or their templates)')
        return batches

    def _embed(self, token_batches: List[Tensor], progress: bool = False) -> Tensor:
        device = next(self.text_encoder.parameters()).device
        trim = getattr(self.text_encoder, 'trim_padding', None)
        num_prompts = sum(len(token_ids) for token_ids in token_batches)
        reporter = None
        if progress and num_prompts >= self.progress_min_prompts:
            reporter = PromptProgress(num_prompts, len(token_batches))
        embeddings = []
        for token_ids in token_batches:
            if trim is not None:
                token_ids = trim(token_ids)
            embeddings.append(F.normalize(self.text_encoder(token_ids.to(device)), dim=-1))
            if reporter is not None:
                reporter.update(len(token_ids))
        return torch.cat(embeddings)

    def _combine(self, prompt_embeddings: Tensor, owners: List[int],
                 num_classes: int) -> ClassEmbeddings:
        embeddings = prompt_embeddings.view(len(owners), len(self.templates), -1)
        if self.name_rule == 'average':
            index = torch.as_tensor(owners, device=embeddings.device)
            embeddings = F.normalize(
                embeddings.new_zeros(num_classes,
                                     *embeddings.shape[1:]).index_add(0, index, embeddings),
                dim=-1)
        query_to_class = owners if self.name_rule == 'separate' else list(range(num_classes))
        if self.template_reduction == 'mean':
            embeddings = embeddings.mean(dim=1)
        return ClassEmbeddings(F.normalize(embeddings, dim=-1), query_to_class)

    def encode(self, vocabulary: Sequence[Sequence[str]]) -> ClassEmbeddings:
        """Class embeddings of ``vocabulary``, computed now (no cache; differentiable when
        gradients are enabled, as CAT-Seg's fine-tuning needs).

        Args:
            vocabulary (Sequence[Sequence[str]]): the names (synonyms) of each class.

        Returns:
            ClassEmbeddings: the embeddings and the class of each row.
        """
        prompts, owners = self.prompts(vocabulary)
        return self._combine(self._embed(self._tokenize(prompts)), owners, len(vocabulary))

    def __call__(self, vocabulary: Sequence[Sequence[str]]) -> ClassEmbeddings:
        """Class embeddings of ``vocabulary`` without gradients, from the cache when neither
        the request nor :meth:`weights_version` changed since the last call.

        Args:
            vocabulary (Sequence[Sequence[str]]): the names (synonyms) of each class.

        Returns:
            ClassEmbeddings: the embeddings and the class of each row.
        """
        request = (tuple(map(tuple, vocabulary)), tuple(self.templates), self.name_rule,
                   self.template_reduction, self._autocast_state())
        if (self._frozen and self._checked_while_frozen and self._cache is not None
                and self._cache[0][:-1] == request):
            return self._cache[1]
        key = request + (self.weights_version(), )
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, self._encode_with_disk_cache(vocabulary))
        self._checked_while_frozen = bool(self._frozen)
        return self._cache[1]

    @contextmanager
    def frozen(self) -> Iterator['TextClassifier']:
        """Take the tower's weights as fixed inside the block: the first request checks
        :meth:`weights_version` as usual, later requests with the same vocabulary are answered
        from the cache without reading the weights again (the fingerprint reads every tensor of
        the tower, about 50 ms per request for a CLIP B text tower on CPU). For evaluation loops
        (``ModelDatasetMetaHook`` enters it for every val / test run); a weight edit inside the
        block needs :meth:`invalidate`.

        Yields:
            TextClassifier: this classifier.
        """
        if not self._frozen:
            self._checked_while_frozen = False
        self._frozen += 1
        try:
            yield self
        finally:
            self._frozen -= 1
            if not self._frozen:
                self._checked_while_frozen = False

    def _autocast_state(self) -> tuple:
        """Whether (and in which dtype) the tower would run under autocast right now: fp16
        embeddings are not the fp32 ones, so the caches keep them apart."""
        device_type = next(self.text_encoder.parameters()).device.type
        if not torch.is_autocast_enabled(device_type):
            return (device_type, None)
        return (device_type, str(torch.get_autocast_dtype(device_type)))

    # ---------------------------------------------------------------------------- invalidation
    def _count_load(self, module: nn.Module, incompatible_keys) -> None:
        self._num_loads += 1
        self._checked_while_frozen = False  # a load inside frozen() is seen too

    def invalidate(self) -> None:
        """Drop the cached embeddings (only needed after an in-place edit of the tower that
        keeps every tensor's sum and norm, or after any edit inside :meth:`frozen`)."""
        self._cache = None
        self._checked_while_frozen = False

    def weights_version(self) -> tuple:
        """A value that changes whenever the tower's weights do: the number of
        ``load_state_dict`` calls on the tower and, per parameter and buffer, its device, dtype,
        shape, sum and L2 norm (float32 reductions without copies: about 50 ms for the CLIP
        B text tower on one CPU core).

        Returns:
            tuple: the version (compare with ``==``).
        """
        tensors = [*self.text_encoder.parameters(), *self.text_encoder.buffers()]
        with torch.no_grad():
            moments = [_moments(tensor.detach()) for tensor in tensors]
            moments = torch.stack(moments).flatten().tolist() if moments else []
        layout = tuple((str(t.device), t.dtype, tuple(t.shape)) for t in tensors)
        return (self._num_loads, layout, tuple(moments))

    # ------------------------------------------------------------------------------ disk cache
    def _encode_with_disk_cache(self, vocabulary: Sequence[Sequence[str]]) -> ClassEmbeddings:
        prompts, owners = self.prompts(vocabulary)
        token_batches = self._tokenize(prompts)
        path = None
        if self.cache_dir:
            path = osp.join(self.cache_dir, f'{self._disk_key(token_batches, owners)}.pth')
            cached = self._load(path)
            if cached is not None:
                return cached
        result = self._combine(self._embed(token_batches, progress=True), owners, len(vocabulary))
        if path is not None:
            self._save(path, result)
        return result

    def _disk_key(self, token_batches: List[Tensor], owners: List[int]) -> str:
        digest = hashlib.sha256()
        settings = dict(
            format=_CACHE_FORMAT,
            name_rule=self.name_rule,
            autocast=self._autocast_state(),
            template_reduction=self.template_reduction,
            owners=owners,
            tower=type(self.text_encoder).__qualname__,
            # Settings that change the output without changing the weights (pooling, mask).
            tower_settings=sorted(
                (k, repr(v)) for k, v in vars(self.text_encoder).items()
                if isinstance(v, (bool, int, float, str, type(None))) and not k.startswith('_')
                and k not in ('training', 'num_calls', 'with_cp')))
        digest.update(repr(settings).encode())
        for token_ids in token_batches:
            digest.update(repr(tuple(token_ids.shape)).encode())
            digest.update(_tensor_bytes(token_ids.to(torch.int64)))
        for name, tensor in sorted(self.text_encoder.state_dict().items()):
            digest.update(f'{name}:{tensor.dtype}:{tuple(tensor.shape)}'.encode())
            digest.update(_tensor_bytes(tensor))
        return digest.hexdigest()

    def _load(self, path: str) -> Optional[ClassEmbeddings]:
        if not osp.isfile(path):
            return None
        try:
            # weights_only: the file may hold tensors, lists and numbers; anything else (code
            # in a crafted pickle) is refused before it runs.
            data = torch.load(path, map_location='cpu', weights_only=True)
            embeddings, query_to_class = data['embeddings'], list(data['query_to_class'])
            if data.get('format') != _CACHE_FORMAT or not isinstance(embeddings, Tensor):
                raise ValueError('not a text-embedding cache file of this version')
        except Exception as error:  # a damaged, foreign or malicious file: recompute
            if isinstance(error, pickle.UnpicklingError):
                reason = 'it holds objects other than tensors and plain data, not loaded'
            else:
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            warnings.warn(f'refused the text-embedding cache file {path} ({reason}); the '
                          'class embeddings are recomputed and the file rewritten')
            return None
        device = next(self.text_encoder.parameters()).device
        return ClassEmbeddings(embeddings.to(device), query_to_class)

    def _save(self, path: str, result: ClassEmbeddings) -> None:
        os.makedirs(self.cache_dir, exist_ok=True)
        data = dict(
            format=_CACHE_FORMAT,
            embeddings=result.embeddings.detach().cpu(),
            query_to_class=list(result.query_to_class))
        # Written to a temporary file and renamed, so a reader never sees half a file.
        handle, temporary = tempfile.mkstemp(dir=self.cache_dir, suffix='.tmp')
        os.close(handle)
        try:
            torch.save(data, temporary)
            os.replace(temporary, path)
        finally:
            if osp.exists(temporary):
                os.remove(temporary)


class PromptProgress:
    """Progress of a prompt encoding: MMEngine's ``ProgressBar`` on a terminal, else a log line
    at the start and at every quarter (rank 0 only; other ranks encode silently).

    Args:
        num_prompts (int): prompts to encode.
        num_batches (int): tower forwards they take.
    """

    def __init__(self, num_prompts: int, num_batches: int):
        self.num_prompts, self.done, self.next_quarter = num_prompts, 0, 1
        self.start = time.perf_counter()
        self.enabled = get_rank() == 0
        self.bar = None
        if not self.enabled:
            return
        message = f'encoding {num_prompts} prompts in {num_batches} batches'
        if sys.stdout.isatty():
            print(message)
            self.bar = ProgressBar(num_prompts, file=sys.stdout)
        else:
            print_log(message, logger='current')

    def update(self, count: int) -> None:
        if not self.enabled:
            return
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
            if self.done >= self.num_prompts:
                sys.stdout.write('\n')
            return
        while self.next_quarter <= 4 and self.done * 4 >= self.next_quarter * self.num_prompts:
            elapsed = time.perf_counter() - self.start
            left = elapsed * (self.num_prompts - self.done) / self.done
            print_log(
                f'prompts {self.done}/{self.num_prompts} ({self.next_quarter * 25}%), '
                f'{elapsed:.0f} s, about {left:.0f} s left',
                logger='current')
            self.next_quarter += 1


def _moments(tensor: Tensor) -> Tensor:
    """``(2,)`` float32 sum and L2 norm of a tensor, on its device."""
    if tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.float()
    return torch.stack([tensor.sum(), torch.linalg.vector_norm(tensor)]).float()


def _tensor_bytes(tensor: Tensor) -> memoryview:
    """The raw bytes of a tensor (any dtype, numpy has no bfloat16)."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy())
