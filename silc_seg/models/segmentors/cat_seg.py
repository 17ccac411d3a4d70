"""CAT-Seg open-vocabulary semantic segmentation on SILC/CLIP towers.

Cho et al., "CAT-Seg: Cost Aggregation for Open-Vocabulary Semantic Segmentation", CVPR 2024: the
cosine cost volume between dense image embeddings and class-name text embeddings is aggregated
spatially and across classes (:class:`~silc_seg.models.layers.CATSegAggregator`), while only the
query/value projection weights of both towers are fine-tuned.
"""
import copy
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmseg.structures import SegDataSample
from torch import Tensor

from silc_seg.registry import MODELS
from ..layers.cat_seg_qv_finetune import setup_qv_finetuning
from ..layers.dense_attention import DENSE_VARIANTS
from ..utils import TextClassifier, build_vocabulary
from .base import OpenVocabularySegmentor
from .vocabulary import ClassNames

CAT_SEG_TEMPLATE = 'A photo of a {} in the scene'


def follow_tower(cfg: dict, key: str, value: Optional[int], where: str, source: str) -> None:
    """Set ``cfg[key]`` to the value the tower dictates, or check a configured one against it.

    Args:
        cfg (dict): config to fill in place.
        key (str): the key.
        value (int, optional): the tower's value; None if the tower does not say (then the
            configured value stays).
        where (str): the config path of ``key``, for the error message.
        source (str): where ``value`` comes from, for the error message.
    """
    if value is None:
        return
    if cfg.get(key) is None:
        cfg[key] = value
    elif cfg[key] != value:
        raise ValueError(f'{where}={cfg[key]} does not match {source} ({value}); leave '
                         f'{where} out of the config and it follows the tower')


def default_guidance_layers(depth: int, num_maps: int) -> Tuple[int, ...]:
    """Blocks evenly spaced through the tower, as CAT-Seg picks them: the ends of the first
    ``1 / (num_maps + 1)``, ``2 / (num_maps + 1)``, ... of the blocks (ViT-B/16, 12 blocks:
    indices 3 and 7; ViT-L/14, 24 blocks: 7 and 15, ``cat_seg/cat_seg_model.py``)."""
    layers = tuple((i + 1) * depth // (num_maps + 1) - 1 for i in range(num_maps))
    if min(layers) < 0:
        raise ValueError(f'a tower of {depth} blocks is too shallow for {num_maps} guidance maps')
    return layers


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

    Dense features (``dense_variant``): by default CAT-Seg's dense last block
    (:func:`~silc_seg.models.layers.dense_attention.catseg_block_forward`); ``'plain'`` runs the
    ordinary last block instead.

    Fine-tuning: in both towers only the query/value projection weights of every attention layer
    train, as in CAT-Seg (the fused ``attn.qkv`` is split so that the key rows are frozen
    parameters, see :class:`~silc_seg.models.layers.cat_seg_qv_finetune.SplitQKVLinear`);
    ``train_qv_bias`` and ``image_trainable_params``/``text_trainable_params`` (e.g. positional
    embeddings) add parameters. Give them CAT-Seg's 0.01 learning-rate multiplier with
    ``paramwise_cfg.custom_keys`` on ``image_encoder`` and ``text_encoder``.

    Sizes that follow from the towers: ``decode_head.vision_width`` (image tower ``width``),
    ``decode_head.aggregator.text_dims`` (image tower ``output_dim``, which the text tower's must
    equal), ``decode_head.aggregator.num_templates`` (number of ``templates``),
    ``guidance_layers`` (from the tower depth) and ``image_size`` (the tower's ``img_size``).
    Leave them out of a config to follow the tower; configured values are checked against it.

    Args:
        image_encoder (dict): image tower config with ``encode_dense``.
        text_encoder (dict): text tower config, ``text_encoder(token_ids) -> (N, D)``.
        tokenizer (dict): tokenizer config, ``tokenizer(list_of_str) -> LongTensor (N, L)``.
        decode_head (dict): :class:`CATSegHead` config (its tower-dependent sizes may be left
            out, see above).
        train_class_names (str | Sequence, optional): training vocabulary (class-name file or
            list, one entry per label value); required for training.
        class_names (str | Sequence, optional): test vocabulary; if None, the class names of the
            evaluated dataset (``dataset_meta``, set by ``ModelDatasetMetaHook``).
        templates (str | Sequence[str]): prompt templates (CAT-Seg ViT-B: one,
            ``'A photo of a {} in the scene'``); their number must match the head's
            ``num_templates``.
        dense_variant (str): last-block variant of the image tower for the cost volume:
            ``'catseg'`` (CAT-Seg's dense path) or ``'plain'`` (the ordinary block).
        guidance_layers (Sequence[int], optional): image-tower block indices whose outputs
            guide the decoder (CAT-Seg ViT-B/16: blocks 4 and 8, i.e. indices 3 and 7); None:
            :func:`default_guidance_layers` of the tower depth.
        image_size (tuple[int, int], optional): resolution at which the image tower sees every
            image or window (CAT-Seg ViT-B: 384); None: the tower's ``img_size``.
        train_qv_bias (bool): also train the query/value rows of the ``qkv`` biases (CAT-Seg:
            False).
        image_trainable_params (Sequence[str]): name suffixes of image-tower parameters trained
            besides the query/value weights (CAT-Seg: none; e.g. ``('pos_embed', )``).
        text_trainable_params (Sequence[str]): the same for the text tower (CAT-Seg: none;
            e.g. ``('positional_embedding', )``).
        name_rule (str): how a class's names become one text embedding per template (see
            :class:`~silc_seg.models.utils.TextClassifier`): ``'first'`` (the first name only,
            as CAT-Seg's ``CATSegPredictor.get_text_embeds``) or ``'average'`` (normalized sum
            of the names' embeddings).
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
                 dense_variant: str = 'catseg',
                 guidance_layers: Optional[Sequence[int]] = None,
                 image_size: Optional[Tuple[int, int]] = None,
                 train_qv_bias: bool = False,
                 image_trainable_params: Sequence[str] = (),
                 text_trainable_params: Sequence[str] = (),
                 name_rule: str = 'first',
                 text_batch_size: int = 256,
                 text_cache_dir: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if dense_variant not in DENSE_VARIANTS:
            raise ValueError(f'unknown dense_variant {dense_variant!r}; choose from '
                             f'{DENSE_VARIANTS}')
        self.dense_variant = dense_variant
        self.image_encoder = MODELS.build(image_encoder)
        self.text_encoder = MODELS.build(text_encoder)
        self.tokenizer = MODELS.build(tokenizer)
        if name_rule == 'separate':
            raise ValueError("CATSeg needs one text embedding per class: name_rule 'average' "
                             "or 'first'")
        self.text_classifier = TextClassifier(
            self.text_encoder,
            self.tokenizer,
            list(templates) if not isinstance(templates, str) else templates,
            name_rule=name_rule,
            template_reduction='none',
            batch_size=text_batch_size,
            cache_dir=text_cache_dir)
        self.templates = self.text_classifier.templates
        self.decode_head = MODELS.build(self._head_cfg_for_towers(decode_head))
        self.align_corners = self.decode_head.align_corners
        num_maps = self.decode_head.num_guidance_maps
        if guidance_layers is None:
            depth = getattr(self.image_encoder, 'depth', None)
            if depth is None:
                raise ValueError(f'{type(self.image_encoder).__name__} has no `depth`: set '
                                 'guidance_layers')
            guidance_layers = default_guidance_layers(depth, num_maps)
        self.guidance_layers = tuple(guidance_layers)
        if len(self.guidance_layers) != num_maps:
            raise ValueError(f'{len(self.guidance_layers)} guidance_layers but the head expects '
                             f'{num_maps} intermediate maps')
        if image_size is None:
            image_size = getattr(self.image_encoder, 'img_size', None)
            if image_size is None:
                raise ValueError(f'{type(self.image_encoder).__name__} has no `img_size`: set '
                                 'image_size')
        self.image_size = (image_size,
                           image_size) if isinstance(image_size, int) else tuple(image_size)
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
            setup_qv_finetuning(tower, trainable, train_qv_bias=train_qv_bias)

    def _head_cfg_for_towers(self, decode_head: dict) -> dict:
        """The head config with the sizes that follow from the towers and templates filled in
        (or checked, where configured)."""
        head = copy.deepcopy(dict(decode_head))
        image_dims = getattr(self.image_encoder, 'output_dim', None)
        text_dims = getattr(self.text_encoder, 'output_dim', None)
        if None not in (image_dims, text_dims) and image_dims != text_dims:
            raise ValueError(f'the image tower embeds into {image_dims} dimensions but the text '
                             f'tower into {text_dims}: set the same output_dim in both')
        follow_tower(head, 'vision_width', getattr(self.image_encoder, 'width', None),
                     'decode_head.vision_width', 'the image tower width')
        aggregator = dict(head.get('aggregator', {}))
        follow_tower(aggregator, 'text_dims', image_dims, 'decode_head.aggregator.text_dims',
                     "the towers' output_dim")
        follow_tower(aggregator, 'num_templates', len(self.templates),
                     'decode_head.aggregator.num_templates', 'the number of templates')
        head['aggregator'] = aggregator
        return head

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
            inputs = F.interpolate(
                inputs, size=self.image_size, mode='bilinear', align_corners=False)
        return self.image_encoder.encode_dense(
            inputs, variant=self.dense_variant, return_intermediates=self.guidance_layers)

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
        return F.interpolate(
            logits, size=inputs.shape[-2:], mode='bilinear', align_corners=self.align_corners)

    def loss(self, inputs: Tensor, data_samples: List[SegDataSample]) -> dict:
        """Per-class binary cross-entropy (the head's ``loss_decode``) on the training
        vocabulary.

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
        out_size, crop_size, stride = (
            self.test_cfg[k] for k in ('out_size', 'crop_size', 'stride'))
        resized = F.interpolate(image[None], size=out_size, mode='bilinear', align_corners=False)
        windows = F.unfold(resized, kernel_size=crop_size, stride=stride)  # (1, 3*h*w, L)
        windows = windows[0].T.reshape(-1, 3, *crop_size)
        global_view = F.interpolate(
            image[None], size=crop_size, mode='bilinear', align_corners=False)
        logits = self.class_logits(torch.cat([windows, global_view]), text_features)
        scores = F.interpolate(
            logits, size=crop_size, mode='bilinear', align_corners=self.align_corners).sigmoid()
        num_classes = scores.shape[1]
        window_scores = scores[:-1].flatten(1).T[None]  # (1, T*h*w, L)
        summed = F.fold(window_scores, out_size, kernel_size=crop_size, stride=stride)
        coverage = F.fold(
            F.unfold(scores.new_ones(1, 1, *out_size), kernel_size=crop_size, stride=stride),
            out_size,
            kernel_size=crop_size,
            stride=stride)
        global_scores = F.interpolate(
            scores[-1:], size=out_size, mode='bilinear', align_corners=self.align_corners)
        merged = (summed / coverage + global_scores) / 2
        return merged.view(num_classes, *out_size)

    def _whole_scores(self, image: Tensor, text_features: Tensor) -> Tensor:
        return self.class_logits(image[None], text_features)[0].sigmoid()

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> List[Tensor]:
        """Per-class sigmoid scores of each unpadded image, at ``out_size`` (slide) or the
        head's output resolution (whole): :meth:`predict` resizes them once to the original
        size, as CAT-Seg's ``sem_seg_postprocess`` does.

        Args:
            inputs (Tensor): (B, 3, H, W) preprocessed (possibly padded) images.
            batch_img_metas (list[dict]): metainfo with ``img_shape`` of each image.

        Returns:
            list[Tensor]: (T, h, w) scores of every image (``seg_logits`` after
            :meth:`predict`, whose ``pred_sem_seg`` is their arg-max at the original size).
        """
        scores_of = self._slide_scores if self.test_cfg['mode'] == 'slide' else self._whole_scores
        text_features = self.test_text_features()
        return [
            scores_of(image, text_features)
            for image in self.unpadded_images(inputs, batch_img_metas)
        ]
