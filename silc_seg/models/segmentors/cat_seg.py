"""CAT-Seg open-vocabulary semantic segmentation on SILC/CLIP towers.

Cho et al., "CAT-Seg: Cost Aggregation for Open-Vocabulary Semantic Segmentation", CVPR 2024: the
cosine cost volume between dense image embeddings and class-name text embeddings is aggregated
spatially and across classes (:class:`~silc_seg.models.layers.CATSegAggregator`), while only the
query/value projections and positional embeddings of both towers are fine-tuned.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmseg.structures import SegDataSample
from torch import Tensor

from silc_seg.registry import MODELS
from ..layers.cat_seg_qv_finetune import setup_qv_finetuning
from ..utils import TextClassifier, build_vocabulary
from .base import OpenVocabularySegmentor
from .vocabulary import ClassNames

CAT_SEG_TEMPLATE = 'A photo of a {} in the scene'


@MODELS.register_module()
class CATSeg(OpenVocabularySegmentor):
    """CAT-Seg segmentor (CVPR 2024 version: the image tower's intermediate features guide the
    upsampling; no extra backbone).

    Training: the image (resized to ``image_size``) goes through the image tower once, giving
    the dense projected embeddings and the maps after ``guidance_layers``; the text tower embeds
    every training class with every template (with gradients: both towers are fine-tuned);
    the head predicts one logit map per class, trained with per-class binary cross-entropy.
    Testing: ``test_cfg.mode='slide'`` is CAT-Seg's inference (the image resized to
    ``out_size``, overlapping ``crop_size`` windows plus a global view, sigmoid scores of the
    windows averaged, then averaged with the global view's); ``'whole'`` runs the resized image
    once.

    Fine-tuning: in both towers only the query/value projections of every attention layer
    (the fused ``attn.qkv`` is split so that the key rows are frozen parameters, see
    :class:`~silc_seg.models.layers.cat_seg_qv_finetune.SplitQKVLinear`) and the parameters
    named in ``image_trainable_params``/``text_trainable_params`` train; give them CAT-Seg's
    0.01 learning-rate multiplier with ``paramwise_cfg.custom_keys`` on ``image_encoder`` and
    ``text_encoder``.

    Args:
        image_encoder (dict): image tower config with ``encode_dense``.
        text_encoder (dict): text tower config, ``text_encoder(token_ids) -> (N, D)``.
        tokenizer (dict): tokenizer config, ``tokenizer(list_of_str) -> LongTensor (N, L)``.
        decode_head (dict): :class:`CATSegHead` config.
        train_class_names (str | Sequence, optional): training vocabulary (class-name file or
            list, one entry per label value); required for training.
        class_names (str | Sequence, optional): test vocabulary; if None, the class names of the
            evaluated dataset (``dataset_meta``, set by ``ModelDatasetMetaHook``).
        templates (str | Sequence[str]): prompt templates (CAT-Seg ViT-B: one,
            ``'A photo of a {} in the scene'``); their number must match the head's
            ``num_templates``.
        guidance_layers (Sequence[int]): image-tower block indices whose outputs guide the
            decoder (CAT-Seg ViT-B/16: blocks 4 and 8, i.e. indices 3 and 7).
        image_size (tuple[int, int]): resolution at which the image tower sees every image or
            window (CAT-Seg ViT-B: 384).
        image_trainable_params (Sequence[str]): name suffixes of image-tower parameters trained
            besides query/value (positional embedding).
        text_trainable_params (Sequence[str]): the same for the text tower.
        name_rule (str): how a class's names become one text embedding per template (see
            :class:`~silc_seg.models.utils.TextClassifier`): ``'average'`` (normalized sum of
            the synonyms' embeddings) or ``'first'`` (first name only).
        text_batch_size (int): prompts per text-tower forward at inference.
        text_cache_dir (str, optional): directory that keeps test class embeddings on disk
            (keyed by the text weights, vocabulary and templates); defaults to the environment
            variable ``SILC_SEG_TEXT_CACHE_DIR``, else none.
        data_preprocessor (dict, optional): ``SegDataPreProcessor`` with the tower's
            normalization.
        train_cfg (dict, optional): unused, kept for the mmseg interface.
        test_cfg (dict, optional): ``mode`` (``'slide'`` or ``'whole'``); for ``'slide'``
            ``out_size``, ``crop_size`` and ``stride`` (``out_size - crop_size`` a multiple of
            ``stride``).
        init_cfg (dict, optional): initialization config.
    """

    def __init__(self,
                 image_encoder: dict,
                 text_encoder: dict,
                 tokenizer: dict,
                 decode_head: dict,
                 train_class_names: Optional[ClassNames] = None,
                 class_names: Optional[ClassNames] = None,
                 templates: Union[str, Sequence[str]] = (CAT_SEG_TEMPLATE, ),
                 guidance_layers: Sequence[int] = (3, 7),
                 image_size: Tuple[int, int] = (384, 384),
                 image_trainable_params: Sequence[str] = (),
                 text_trainable_params: Sequence[str] = (),
                 name_rule: str = 'average',
                 text_batch_size: int = 256,
                 text_cache_dir: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.image_encoder = MODELS.build(image_encoder)
        self.text_encoder = MODELS.build(text_encoder)
        self.tokenizer = MODELS.build(tokenizer)
        self.decode_head = MODELS.build(decode_head)
        self.align_corners = self.decode_head.align_corners
        if name_rule == 'separate':
            raise ValueError("CATSeg needs one text embedding per class: name_rule 'average' "
                             "or 'first'")
        self.text_classifier = TextClassifier(
            self.text_encoder, self.tokenizer,
            list(templates) if not isinstance(templates, str) else templates,
            name_rule=name_rule, template_reduction='none', batch_size=text_batch_size,
            cache_dir=text_cache_dir)
        self.templates = self.text_classifier.templates
        if len(self.templates) != self.decode_head.aggregator.num_templates:
            raise ValueError(
                f'{len(self.templates)} prompt templates but the head was built for '
                f'{self.decode_head.aggregator.num_templates} '
                '(decode_head.aggregator.num_templates)')
        self.guidance_layers = tuple(guidance_layers)
        if len(self.guidance_layers) != self.decode_head.num_guidance_maps:
            raise ValueError(f'{len(self.guidance_layers)} guidance_layers but the head expects '
                             f'{self.decode_head.num_guidance_maps} intermediate maps')
        self.image_size = tuple(image_size)
        self.train_cfg = train_cfg
        self.test_cfg = self._check_test_cfg(test_cfg)
        self.train_vocabulary = (
            build_vocabulary(train_class_names) if train_class_names is not None else None)
        self._init_vocabulary(class_names)
        # The towers are initialized (or loaded by their init_cfg) before the qkv split, so that
        # their own init_weights still sees the fused projection.
        for tower, trainable in ((self.image_encoder, image_trainable_params),
                                 (self.text_encoder, text_trainable_params)):
            if hasattr(tower, 'init_weights'):
                tower.init_weights()
            setup_qv_finetuning(tower, trainable)

    @classmethod
    def _check_test_cfg(cls, test_cfg: Optional[dict]) -> dict:
        test_cfg = cls.check_test_cfg(test_cfg, slide_keys=('out_size', 'crop_size', 'stride'))
        if test_cfg['mode'] == 'slide':
            for out, crop, stride in zip(test_cfg['out_size'], test_cfg['crop_size'],
                                         test_cfg['stride']):
                if crop > out or stride < 1 or (out - crop) % stride:
                    raise ValueError(
                        f'test_cfg: windows of {test_cfg["crop_size"]} with stride '
                        f'{test_cfg["stride"]} must tile out_size {test_cfg["out_size"]} exactly')
        return test_cfg

    # ----------------------------------------------------------------------------- vocabulary
    def encode_vocabulary(self, vocabulary: List[List[str]]) -> Tensor:
        """Text embeddings of every class and template, computed now (differentiable when
        gradients are enabled); a class's names are combined by ``name_rule``.

        Args:
            vocabulary (list[list[str]]): synonyms of each class.

        Returns:
            Tensor: (T, P, D) L2-normalized embeddings.
        """
        return self.text_classifier.encode(vocabulary).embeddings

    def test_text_features(self) -> Tensor:
        """The (T, P, D) embeddings of the inference vocabulary, cached by the text
        classifier."""
        return self.text_classifier(self.vocabulary).embeddings

    # -------------------------------------------------------------------------------- logits
    def extract_feat(self, inputs: Tensor) -> dict:
        """Dense embeddings and guidance maps of images resized to ``image_size``.

        Args:
            inputs (Tensor): (B, 3, H, W) normalized images.

        Returns:
            dict: ``dense`` (B, D, h, w) and ``intermediates`` (list of (B, C, h, w)).
        """
        if tuple(inputs.shape[-2:]) != self.image_size:
            inputs = F.interpolate(inputs, size=self.image_size, mode='bilinear',
                                   align_corners=False)
        return self.image_encoder.encode_dense(
            inputs, variant='plain', return_intermediates=self.guidance_layers)

    def class_logits(self, inputs: Tensor, text_features: Tensor) -> Tensor:
        """(B, 3, H, W) images -> (B, T, h', w') class logits at the head's output resolution."""
        features = self.extract_feat(inputs)
        return self.decode_head(features['dense'], features['intermediates'], text_features)

    def _forward(self, inputs: Tensor, data_samples=None) -> Tensor:
        """Raw class logits of the inference vocabulary (no post-processing)."""
        return self.class_logits(inputs, self.test_text_features())

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Whole-image class logits resized to the input resolution, (B, T, H, W)."""
        logits = self._forward(inputs)
        return F.interpolate(logits, size=inputs.shape[-2:], mode='bilinear',
                             align_corners=self.align_corners)

    def loss(self, inputs: Tensor, data_samples: List[SegDataSample]) -> dict:
        """Per-class BCE on the training vocabulary.

        Args:
            inputs (Tensor): (B, 3, H, W) preprocessed training crops.
            data_samples (list[SegDataSample]): samples with ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: losses (``loss_ce``) and ``acc_seg``.
        """
        if self.train_vocabulary is None:
            raise RuntimeError('CATSeg needs train_class_names (a class-name file or list with '
                               'one entry per label value) to train')
        text_features = self.encode_vocabulary(self.train_vocabulary)
        logits = self.class_logits(inputs, text_features)
        return self.decode_head.loss_by_feat(logits, data_samples)

    def _slide_scores(self, image: Tensor, text_features: Tensor) -> Tensor:
        """CAT-Seg's sliding-window inference of one (3, H, W) image -> (T, H, W) scores."""
        out_size, crop_size, stride = (self.test_cfg[k] for k in ('out_size', 'crop_size',
                                                                  'stride'))
        resized = F.interpolate(image[None], size=out_size, mode='bilinear', align_corners=False)
        windows = F.unfold(resized, kernel_size=crop_size, stride=stride)  # (1, 3*h*w, L)
        windows = windows[0].T.reshape(-1, 3, *crop_size)
        global_view = F.interpolate(image[None], size=crop_size, mode='bilinear',
                                    align_corners=False)
        logits = self.class_logits(torch.cat([windows, global_view]), text_features)
        scores = F.interpolate(logits, size=crop_size, mode='bilinear',
                               align_corners=self.align_corners).sigmoid()
        num_classes = scores.shape[1]
        window_scores = scores[:-1].flatten(1).T[None]  # (1, T*h*w, L)
        summed = F.fold(window_scores, out_size, kernel_size=crop_size, stride=stride)
        coverage = F.fold(
            F.unfold(scores.new_ones(1, 1, *out_size), kernel_size=crop_size, stride=stride),
            out_size, kernel_size=crop_size, stride=stride)
        global_scores = F.interpolate(scores[-1:], size=out_size, mode='bilinear',
                                      align_corners=self.align_corners)
        merged = (summed / coverage + global_scores) / 2
        return F.interpolate(merged, size=image.shape[-2:], mode='bilinear',
                             align_corners=self.align_corners).view(num_classes,
                                                                    *image.shape[-2:])

    def _whole_scores(self, image: Tensor, text_features: Tensor) -> Tensor:
        logits = self.class_logits(image[None], text_features)
        return F.interpolate(logits, size=image.shape[-2:], mode='bilinear',
                             align_corners=self.align_corners)[0].sigmoid()

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> List[Tensor]:
        """Per-class sigmoid scores of each image at its unpadded input size.

        Args:
            inputs (Tensor): (B, 3, H, W) preprocessed (possibly padded) images.
            batch_img_metas (list[dict]): metainfo with ``img_shape`` of each image.

        Returns:
            list[Tensor]: (T, h_i, w_i) scores of every image (``seg_logits`` after
            :meth:`predict`, whose ``pred_sem_seg`` is their arg-max at the original size).
        """
        scores_of = self._slide_scores if self.test_cfg['mode'] == 'slide' else self._whole_scores
        text_features = self.test_text_features()
        return [scores_of(image, text_features)
                for image in self.unpadded_images(inputs, batch_img_metas)]
