"""Training-free (zero-shot) semantic segmentation with a pair of image/text towers.

Every patch embedding of the image tower is compared by cosine similarity with text embeddings of
the class names (averaged over prompt templates), as in MaskCLIP (Zhou et al., 2022), SCLIP,
ClearCLIP and NACLIP; the last image block can be replaced by their dense variants
(``dense_variant``, see :mod:`silc_seg.models.layers.dense_attention`).
"""
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch import Tensor

from silc_seg.registry import MODELS
from ..layers.dense_attention import DENSE_VARIANTS
from ..utils import PAMR, TextClassifier
from .base import OpenVocabularySegmentor
from .native_aspect import check_native_test_cfg, native_aspect_logits
from .vocabulary import ClassNames

PRECISIONS = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}
PARTIAL_PATCH_MODES = ('pad', 'drop')


def sliding_windows(height: int, width: int, crop_size: Tuple[int, int],
                    stride: Tuple[int, int]) -> List[Tuple[int, int, int, int]]:
    """Window boxes ``(y1, y2, x1, x2)`` covering an image, laid out as mmseg's
    ``EncoderDecoder.slide_inference`` does (last row/column flush with the border; a side
    shorter than the crop gives a single window of that side's length).

    Args:
        height (int): image height.
        width (int): image width.
        crop_size (tuple[int, int]): window (height, width).
        stride (tuple[int, int]): (height, width) stride.

    Returns:
        list[tuple[int, int, int, int]]: the windows.
    """
    crop_h, crop_w = crop_size
    stride_h, stride_w = stride
    rows = max(height - crop_h + stride_h - 1, 0) // stride_h + 1
    cols = max(width - crop_w + stride_w - 1, 0) // stride_w + 1
    boxes = []
    for row in range(rows):
        for col in range(cols):
            y2 = min(row * stride_h + crop_h, height)
            x2 = min(col * stride_w + crop_w, width)
            boxes.append((max(y2 - crop_h, 0), y2, max(x2 - crop_w, 0), x2))
    return boxes


def centred_padding(height: int, width: int, multiple: int) -> Tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` padding that makes both sides multiples of ``multiple``,
    split evenly between the two borders (as ClearCLIP's ``compute_padsize`` does for its
    windows)."""
    pad_h, pad_w = -height % multiple, -width % multiple
    return pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2


@MODELS.register_module()
class ZeroShotSegmentor(OpenVocabularySegmentor):
    """Zero-shot segmentor: patch-to-text cosine similarity on frozen towers.

    Submodules are named as in pretraining (``image_encoder``, ``text_encoder``, see
    ``docs/design.md``), so a SILC checkpoint or a converted OpenAI/OpenCLIP/SigLIP state dict
    loads directly; the head holds no weights.

    Args:
        image_encoder (dict): image tower config, with ``encode_dense`` and ``patch_size``.
        text_encoder (dict): text tower config, ``text_encoder(token_ids) -> (N, C)``.
        tokenizer (dict): tokenizer config, ``tokenizer(list_of_str) -> LongTensor (N, L)``.
        decode_head (dict): :class:`ZeroShotHead` config (logit scale, background rules).
        class_names (str | Sequence, optional): the vocabulary: a class-name file (one class per
            line, comma-separated synonyms) or a list of names / synonym lists. If None, the
            class names of the evaluated dataset are used (``dataset_meta``, set by
            ``ModelDatasetMetaHook``). When both exist their class counts must agree.
        templates (str | Sequence[str]): ``'imagenet80'`` (OpenAI CLIP's 80 ImageNet
            templates), ``'short'`` (7), ``'single'`` or a list of format strings.
        dense_variant (str): last-block variant: ``'plain'``, ``'maskclip'``, ``'sclip'``,
            ``'clearclip'``, ``'clearclip_vanilla'`` or ``'naclip'``.
        dense_forward (dict, optional): a registered module that computes the dense features
            from the whole tower in place of ``encode_dense``, called as
            ``module(image_encoder, images, text_embeddings) -> (B, C, h, w)``: e.g.
            ``dict(type='SCCLIPDense')``. Then ``dense_variant`` must stay ``'plain'``.
        name_rule (str): how a class's synonyms become text queries (see
            :class:`~silc_seg.models.utils.TextClassifier`): ``'separate'`` (default: one query
            per synonym; the head takes the best synonym's probability, as SCLIP does),
            ``'average'`` or ``'first'``.
        text_batch_size (int): prompts per text-tower forward.
        text_cache_dir (str, optional): directory that keeps class embeddings on disk across
            runs (keyed by the text weights, vocabulary and templates); defaults to the
            environment variable ``SILC_SEG_TEXT_CACHE_DIR``, else none.
        pamr (dict, optional): ``dict(num_iter=10, dilations=(8, 16))`` to refine the logits with
            :class:`PAMR`; None disables it.
        precision (str): ``'fp32'``, ``'fp16'`` or ``'bf16'``: on a GPU the towers (image
            windows and class-name prompts) run under ``torch.autocast`` with that dtype; the
            logits are cast back to fp32 before resizing, PAMR and the softmax. On CPU every
            precision runs in fp32 (a warning says so once). The references (SCLIP, NACLIP,
            ClearCLIP) cast the CLIP weights to fp16 on GPU. Defaults to ``'fp32'``.
        data_preprocessor (dict, optional): e.g. ``SegDataPreProcessor`` with the tower's
            normalization.
        test_cfg (dict, optional): ``mode`` (``'slide'``, ``'whole'`` or ``'native'``: each
            image whole at its aspect ratio within ``max_num_patches``, see
            :mod:`~silc_seg.models.segmentors.native_aspect`), ``crop_size`` and
            ``stride`` (slide), ``window_batch_size`` (windows per image-tower forward; all
            windows of the batch's images are pooled), ``partial_patches``: what happens to a
            window (or whole image) whose sides are not multiples of the patch size:
            ``'pad'`` (default) zero-pads it evenly on both borders and crops the padding off
            the upsampled logits (ClearCLIP); ``'drop'`` leaves the last rows / columns that do
            not fill a patch out of the tower and stretches the patch logits over the whole
            window (SCLIP, NACLIP, whose patch convolution ignores them). ``pad_multiple``
            (``'pad'`` only): pad to multiples of this instead of the patch size (ProxyCLIP:
            56; its towers leave out what does not fill a patch).
        init_cfg (dict, optional): initialization config.
    """

    def __init__(self,
                 image_encoder: dict,
                 text_encoder: dict,
                 tokenizer: dict,
                 decode_head: dict = dict(type='ZeroShotHead'),
                 class_names: Optional[ClassNames] = None,
                 templates: Union[str, Sequence[str]] = 'imagenet80',
                 dense_variant: str = 'plain',
                 dense_forward: Optional[dict] = None,
                 name_rule: str = 'separate',
                 text_batch_size: int = 256,
                 text_cache_dir: Optional[str] = None,
                 pamr: Optional[dict] = None,
                 precision: str = 'fp32',
                 data_preprocessor: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.image_encoder = MODELS.build(image_encoder)
        self.text_encoder = MODELS.build(text_encoder)
        self.tokenizer = MODELS.build(tokenizer)
        self.decode_head = MODELS.build(decode_head)
        self.text_classifier = TextClassifier(
            self.text_encoder,
            self.tokenizer,
            templates,
            name_rule=name_rule,
            batch_size=text_batch_size,
            cache_dir=text_cache_dir)
        self.templates = self.text_classifier.templates
        if dense_variant not in DENSE_VARIANTS:
            raise ValueError(
                f'unknown dense_variant {dense_variant!r}; choose from {DENSE_VARIANTS}')
        self.dense_variant = dense_variant
        if dense_forward is not None and dense_variant != 'plain':
            raise ValueError(f'dense_forward replaces the whole dense path; leave dense_variant '
                             f"'plain' (got {dense_variant!r})")
        self.dense_forward = MODELS.build(dense_forward) if dense_forward is not None else None
        self.pamr = PAMR(**pamr) if pamr is not None else None
        if precision not in PRECISIONS:
            raise ValueError(f'unknown precision {precision!r}; choose from {list(PRECISIONS)}')
        self.precision = precision
        self._warned_cpu_precision = False
        self.test_cfg = self._check_test_cfg(test_cfg)
        self._init_vocabulary(class_names)

    @classmethod
    def _check_test_cfg(cls, test_cfg: Optional[dict]) -> dict:
        if (test_cfg or {}).get('mode') == 'native':
            return check_native_test_cfg(test_cfg)
        test_cfg = cls.check_test_cfg(test_cfg, slide_keys=('crop_size', 'stride'))
        test_cfg.setdefault('window_batch_size', 16)
        if test_cfg.setdefault('partial_patches', 'pad') not in PARTIAL_PATCH_MODES:
            raise ValueError(f'test_cfg.partial_patches must be one of {PARTIAL_PATCH_MODES}, '
                             f"got {test_cfg['partial_patches']!r}")
        pad_multiple = test_cfg.get('pad_multiple')
        if pad_multiple is not None and (not isinstance(pad_multiple, int) or pad_multiple < 1):
            raise ValueError(f'test_cfg.pad_multiple must be a positive int, got {pad_multiple!r}')
        if test_cfg['window_batch_size'] < 1:
            raise ValueError('test_cfg.window_batch_size must be >= 1')
        return test_cfg

    # ----------------------------------------------------------------------------- vocabulary
    @property
    def num_classes(self) -> int:
        return len(self.vocabulary)

    @property
    def out_channels(self) -> int:
        return self.num_classes

    @torch.no_grad()
    def encode_queries(self, queries: Sequence[str]) -> Tensor:
        """Text embeddings of ``queries`` computed now (no cache), each the normalized mean
        over the prompt templates of the normalized prompt embeddings.

        Args:
            queries (Sequence[str]): class names or synonyms.

        Returns:
            Tensor: (Q, C) L2-normalized embeddings.
        """
        return self.text_classifier.encode([[query] for query in queries]).embeddings

    def text_embeddings(self) -> Tuple[Tensor, List[int]]:
        """The query embeddings of the current vocabulary, cached by the text classifier.

        Returns:
            tuple[Tensor, list[int]]: (Q, C) normalized query embeddings and the class index
            of each query.
        """
        return self.text_classifier(self.vocabulary)

    # -------------------------------------------------------------------------- dense logits
    def extract_feat(self, inputs: Tensor, text_embeddings: Optional[Tensor] = None) -> Tensor:
        """(B, 3, H, W) -> (B, C, H/p, W/p) projected patch embeddings of the chosen variant
        (``text_embeddings``: the (Q, C) queries, for a ``dense_forward`` that uses them)."""
        if self.dense_forward is not None:
            return self.dense_forward(self.image_encoder, inputs, text_embeddings)
        return self.image_encoder.encode_dense(inputs, variant=self.dense_variant)['dense']

    def query_logits(self, windows: Tensor, text_embeddings: Tensor) -> Tensor:
        """(B, Q, h, w) patch-resolution query logits of whole-patch windows: the head's
        patch-query cosine similarities."""
        return self.decode_head(self.extract_feat(windows, text_embeddings), text_embeddings)

    def _forward(self, inputs: Tensor, data_samples=None) -> Tensor:
        """(B, Q, H/p, W/p) patch-query cosine similarities (no post-processing)."""
        text_embeddings, _ = self.text_embeddings()
        return self.query_logits(inputs, text_embeddings)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Whole-image query logits at the input resolution, (B, Q, H, W)."""
        text_embeddings, _ = self.text_embeddings()
        return torch.stack([self._whole_logits(image, text_embeddings) for image in inputs])

    def _patch_logits(self, windows: Tensor,
                      text_embeddings: Tensor) -> Tuple[Tensor, Tuple[int, int, int, int]]:
        """Patch-resolution query logits of same-sized windows, padded to whole patches first
        (``partial_patches='pad'``) or cut to whole patches (``'drop'``); returns the logits
        and the ``(left, right, top, bottom)`` padding to crop off after upsampling."""
        patch_size = self.image_encoder.patch_size
        height, width = windows.shape[-2:]
        if self.test_cfg['partial_patches'] == 'drop':
            if height < patch_size or width < patch_size:
                raise ValueError(f"a {height}x{width} window holds no whole {patch_size}px "
                                 "patch: use test_cfg.partial_patches='pad'")
            windows = windows[..., :height - height % patch_size, :width - width % patch_size]
            padding = (0, 0, 0, 0)
        else:
            padding = centred_padding(height, width,
                                      self.test_cfg.get('pad_multiple') or patch_size)
            windows = F.pad(windows, padding)
        logits = self.query_logits(windows, text_embeddings)
        # The head's einsum returns a channels-last view; bilinear upsampling of one window of
        # it reads about 4x slower than of a contiguous copy (CPU, B/16 windows, 150 queries).
        return logits.contiguous(), padding

    @staticmethod
    def _to_pixels(logits: Tensor, padding: Tuple[int, int, int, int], size: Tuple[int,
                                                                                   int]) -> Tensor:
        """Upsample patch logits to the padded window and crop the padding off, ``size`` being
        the unpadded window size."""
        left, right, top, bottom = padding
        padded_size = (size[0] + top + bottom, size[1] + left + right)
        logits = F.interpolate(logits, size=padded_size, mode='bilinear', align_corners=False)
        return logits[..., top:top + size[0], left:left + size[1]]

    def _window_logits(self, windows: Tensor, text_embeddings: Tensor) -> Tensor:
        """Query logits of same-sized windows at their pixel resolution, (n, Q, h, w)."""
        logits, padding = self._patch_logits(windows, text_embeddings)
        return self._to_pixels(logits, padding, windows.shape[-2:])

    def _whole_logits(self, image: Tensor, text_embeddings: Tensor) -> Tensor:
        return self._window_logits(image[None], text_embeddings)[0]

    def _slide_logits(self, images: List[Tensor], text_embeddings: Tensor) -> List[Tensor]:
        """Sliding-window logits of several images; windows of equal size, from all images,
        go through the image tower together, ``window_batch_size`` at a time."""
        num_queries = text_embeddings.shape[0]
        crop_size, stride = self.test_cfg['crop_size'], self.test_cfg['stride']
        sums = [image.new_zeros((num_queries, ) + image.shape[-2:]) for image in images]
        counts = [image.new_zeros((1, ) + image.shape[-2:]) for image in images]
        windows_by_size: Dict[Tuple[int, int], list] = {}
        for index, image in enumerate(images):
            for box in sliding_windows(*image.shape[-2:], crop_size, stride):
                size = (box[1] - box[0], box[3] - box[2])
                windows_by_size.setdefault(size, []).append((index, box))
        chunk = self.test_cfg['window_batch_size']
        for jobs in windows_by_size.values():
            for start in range(0, len(jobs), chunk):
                batch = jobs[start:start + chunk]
                crops = torch.stack(
                    [images[index][:, y1:y2, x1:x2] for index, (y1, y2, x1, x2) in batch])
                logits, padding = self._patch_logits(crops, text_embeddings)
                # Upsampled one window at a time: a batch of pixel-resolution logits would take
                # window_batch_size x Q x crop area of memory.
                for (index, (y1, y2, x1, x2)), window_logits in zip(batch, logits):
                    sums[index][:, y1:y2, x1:x2] += self._to_pixels(window_logits[None], padding,
                                                                    crops.shape[-2:])[0]
                    counts[index][:, y1:y2, x1:x2] += 1
        return [total / count for total, count in zip(sums, counts)]

    def _autocast(self, device: torch.device):
        """The context the towers run in for ``precision`` (see the class docstring)."""
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return nullcontext()
        if device.type != 'cuda':
            if not self._warned_cpu_precision:
                print_log(
                    f'precision={self.precision!r} applies on GPU only; the towers run '
                    f'in fp32 on {device.type}',
                    logger='current',
                    level=30)
                self._warned_cpu_precision = True
            return nullcontext()
        return torch.autocast('cuda', dtype=dtype)

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> List[Tensor]:
        """Query logits of each image at its (unpadded) input resolution.

        Args:
            inputs (Tensor): (B, 3, H, W) normalized, possibly padded batch.
            batch_img_metas (list[dict]): metainfo with ``img_shape`` of each image.

        Returns:
            list[Tensor]: (Q, h_i, w_i) fp32 logits of every image.
        """
        images = self.unpadded_images(inputs, batch_img_metas)
        with self._autocast(inputs.device):
            # Once per batch: the classifier's cache check fingerprints the text tower.
            text_embeddings, _ = self.text_embeddings()
            if self.test_cfg['mode'] == 'slide':
                logits = self._slide_logits(images, text_embeddings)
            elif self.test_cfg['mode'] == 'native':
                logits = [native_aspect_logits(self, image, text_embeddings) for image in images]
            else:
                logits = [self._whole_logits(image, text_embeddings) for image in images]
        return [image_logits.float() for image_logits in logits]

    # ---------------------------------------------------------------------------- prediction
    def postprocess_image(self, sample: SegDataSample, image: Tensor, logits: Tensor) -> None:
        """Query logits at the original size (flip undone), refined by PAMR if enabled, then
        class probabilities (synonyms merged) and labels with the head's background rules.

        Args:
            sample (SegDataSample): the sample to fill.
            image (Tensor): ``(3, h, w)`` the unpadded input image (PAMR's guide).
            logits (Tensor): ``(Q, h, w)`` its query logits.
        """
        meta = sample.metainfo
        logits = self.to_original_geometry(logits, meta)[None]
        if self.pamr is not None:
            logits = self.pamr(self.to_original_geometry(image, meta)[None], logits)
        query_to_class = self.text_classifier.query_to_class(self.vocabulary)
        probabilities = self.decode_head.class_probabilities(logits[0], query_to_class,
                                                             self.num_classes)
        labels = self.decode_head.predict_labels(probabilities)
        sample.set_data(
            dict(seg_logits=PixelData(data=probabilities), pred_sem_seg=PixelData(data=labels)))

    def loss(self, inputs: Tensor, data_samples) -> dict:
        raise RuntimeError(
            'ZeroShotSegmentor is training-free: it segments with the pretrained towers as they '
            'are. Pretrain with the SILC model, or fine-tune with an open-vocabulary segmentor.')
