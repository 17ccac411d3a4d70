"""Masked self-distillation (MaskCLIP of Dong et al., CVPR 2023, arXiv 2208.12262).

Not the training-free "MaskCLIP" of Zhou et al. (ECCV 2022, chongzhou96/MaskCLIP), which the
zero-shot segmentor's dense variants implement: this one is a pretraining objective.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.dist import get_dist_info

from silc_seg.registry import MODELS
from ..losses.masked_distill_losses import masked_lm_loss
from ..utils.masking import MASK_STRATEGIES, patch_mask, text_token_mask
from .silc import SILC, ConfigType, _build


@MODELS.register_module()
class MaskedSelfDistill(SILC):
    """Contrastive image-text pretraining plus masked self-distillation and masked language
    modelling (MaskCLIP of Dong et al.), optionally with SILC's local-to-global distillation.

    Per batch (``B`` pairs, ``Ng`` global crops per image, see :class:`SILC`):

    - the contrastive loss of :class:`SILC` on the unmasked global crops and captions;
    - masked self-distillation: each global crop is masked (``image_mask_ratio`` of its
      patches, ``image_mask_strategy``); the student encoder sees it with the masked patch
      embeddings replaced by a learned ``image_mask_token``; ``image_decoder`` (shallow) and
      ``masked_head`` predict, for every masked patch, the token distribution that the EMA
      teacher (``teacher_image_encoder`` + ``teacher_masked_head``, the online tokenizer)
      gives that patch of the unmasked crop; ``masked_distill_loss`` is the cross-entropy;
    - masked language modelling (when ``text_decoder`` is set): ``text_mask_ratio`` of each
      caption's content tokens are replaced by a learned ``text_mask_embedding``; the text
      tower and ``text_decoder`` predict the original ids through the tower's token embedding
      (tied output layer, as BERT) plus ``mlm_bias``;
    - with ``distill_head`` set, SILC's local-to-global distillation too (its own head and
      teacher head; the teacher image encoder is shared).

    Masks are drawn from a generator seeded with ``mask_seed`` (default: ``torch.initial_seed()``,
    the runner's seed), the rank and the buffer ``mask_step``, which counts training batches and
    is saved in checkpoints: a resumed run draws the same masks as an uninterrupted one.

    Args:
        image_decoder (dict | nn.Module, optional): ``MaskedTokenDecoder`` from the image
            tower's width to the head's input width. None: the student's masked patch tokens
            take the teacher's path, :meth:`~SILCVisionTransformer.project_patches` (the
            per-patch features of TIPS / SigLIP 2).
        masked_head (dict | nn.Module): ``DistillationHead`` of the masked branch (its EMA copy
            is the teacher's tokenizer).
        masked_distill_loss (dict | nn.Module, optional): Defaults to ``MaskedPatchDistillLoss``
            with the head's ``K``.
        image_mask_ratio (float): Fraction of patches masked. Defaults to 0.75.
        image_mask_strategy (str): ``'random'`` or ``'block'``. Defaults to ``'random'``.
        masked_distill_weight (float): Defaults to 1.0.
        text_decoder (dict | nn.Module, optional): ``MaskedTokenDecoder`` from the text
            tower's width back to it; None disables masked language modelling.
        text_mask_ratio (float): Fraction of content tokens masked. Defaults to 0.15 (BERT).
        mlm_weight (float): Defaults to 1.0.
        text_end_token_id (int, optional): End-of-text id (positions from it on are never
            masked). Defaults to the tokenizer's ``eot_token_id``.
        text_special_token_ids (Sequence[int], optional): Ids never masked. Defaults to the
            tokenizer's ``sot_token_id``.
        mask_seed (int, optional): Base seed of the masks. Defaults to None
            (``torch.initial_seed()``).
        **kwargs: :class:`SILC`'s arguments.
    """

    def __init__(self,
                 image_decoder: Optional[ConfigType],
                 masked_head: ConfigType,
                 masked_distill_loss: Optional[ConfigType] = None,
                 image_mask_ratio: float = 0.75,
                 image_mask_strategy: str = 'random',
                 masked_distill_weight: float = 1.0,
                 text_decoder: Optional[ConfigType] = None,
                 text_mask_ratio: float = 0.15,
                 mlm_weight: float = 1.0,
                 text_end_token_id: Optional[int] = None,
                 text_special_token_ids: Optional[Sequence[int]] = None,
                 mask_seed: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if image_mask_strategy not in MASK_STRATEGIES:
            raise ValueError(f'unknown image_mask_strategy {image_mask_strategy!r}; choose '
                             f'from {MASK_STRATEGIES}')
        if not 0.0 < image_mask_ratio < 1.0:
            raise ValueError(f'image_mask_ratio must be in (0, 1), got {image_mask_ratio}')
        self.image_mask_ratio = image_mask_ratio
        self.image_mask_strategy = image_mask_strategy
        self.masked_distill_weight = masked_distill_weight
        self.mlm_weight = mlm_weight
        self.text_mask_ratio = text_mask_ratio
        self.mask_seed = mask_seed

        self.image_decoder = _build(image_decoder) if image_decoder is not None else None
        self.masked_head = _build(masked_head)
        if masked_distill_loss is None:
            masked_distill_loss = dict(
                type='MaskedPatchDistillLoss',
                out_channels=self.masked_head.last_layer.out_features)
        self.masked_distill_loss = _build(masked_distill_loss)
        # Mask token at the encoder input (BEiT / iBOT), initialised as BEiT's (std 0.02).
        self.image_mask_token = nn.Parameter(torch.randn(self.image_encoder.width) * 0.02)
        if not self.with_distill:
            # SILC builds the teacher image encoder only with its own distillation head.
            self.teacher_image_encoder = copy.deepcopy(self.image_encoder)
        self.teacher_masked_head = copy.deepcopy(self.masked_head)
        for param in self.teacher_parameters():
            param.requires_grad_(False)

        self.with_mlm = text_decoder is not None
        if self.with_mlm:
            self.text_decoder = _build(text_decoder)
            width = self.text_encoder.width
            if self.text_decoder.output_proj.out_features != width:
                raise ValueError('text_decoder.out_channels must be the text tower width '
                                 f'({width}): its output meets the tied token embedding')
            self.text_mask_embedding = nn.Parameter(torch.randn(width) * 0.02)
            self.mlm_bias = nn.Parameter(torch.zeros(self.text_encoder.vocab_size))
            self.text_end_token_id = (
                text_end_token_id if text_end_token_id is not None else getattr(
                    self.tokenizer, 'eot_token_id', None))
            self.text_special_token_ids = tuple(
                text_special_token_ids if text_special_token_ids is not None else
                [i for i in [getattr(self.tokenizer, 'sot_token_id', None)] if i is not None])
            if self.text_end_token_id is None:
                raise ValueError('masked language modelling needs the end-of-text id: set '
                                 'text_end_token_id or use a tokenizer with eot_token_id')
        # Training batches seen; seeds the masks (saved, so a resume draws the same masks).
        self.register_buffer('mask_step', torch.zeros((), dtype=torch.long))
        self.train()  # puts the teachers in eval mode

    def teacher_student_names(self) -> List[Tuple[str, str]]:
        """SILC's ``(teacher, student)`` names (or just the image towers without SILC's head)
        and the masked branch's tokenizer and head: :meth:`train_step` averages them, and they
        follow the student when weights arrive without teacher weights."""
        names = super().teacher_student_names()
        if 'teacher_masked_head' not in self._modules:
            return names  # SILC.__init__ asks before this class has built its branch
        if not names:
            names = [('teacher_image_encoder', 'image_encoder')]
        return names + [('teacher_masked_head', 'masked_head')]

    # ----------------------------------------------------------------------------------------
    def self_distill_losses(self, inputs: Dict[str, torch.Tensor],
                            global_embeddings: Optional[torch.Tensor],
                            teacher_tokens: Optional[torch.Tensor], batch_size: int,
                            teacher_temp: float) -> Dict[str, torch.Tensor]:
        """SILC's terms (with ``distill_head``), ``loss_mask_distill`` and (with a text decoder)
        ``loss_mlm``, and the logged ``mask_center_norm``. The masked branch's targets come from
        the same teacher pass over the global crops as SILC's (``teacher_tokens``)."""
        losses = super().self_distill_losses(inputs, global_embeddings, teacher_tokens, batch_size,
                                             teacher_temp)
        generator = self._mask_generator()
        losses.update(
            self._masked_image_distill(inputs['global_crops'], teacher_tokens, generator))
        if self.with_mlm:
            losses['loss_mlm'] = self.mlm_weight * self._masked_lm(inputs['text'], generator)
        if self.training:
            self.mask_step += 1
        return losses

    def _mask_generator(self) -> torch.Generator:
        rank, world_size = get_dist_info()
        base = self.mask_seed if self.mask_seed is not None else torch.initial_seed()
        seed = (base * 1_000_003 + int(self.mask_step) * world_size + rank) % (2**63 - 1)
        return torch.Generator().manual_seed(seed)

    def sample_image_mask(self,
                          batch_size: int,
                          grid: Tuple[int, int],
                          generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``(batch_size, h * w)`` bool patch mask with the configured ratio and strategy."""
        return patch_mask(batch_size, grid, self.image_mask_ratio, self.image_mask_strategy,
                          generator)

    def _masked_image_distill(self, images: torch.Tensor, teacher_tokens: torch.Tensor,
                              generator: torch.Generator) -> Dict[str, torch.Tensor]:
        encoder = self.image_encoder
        prefix = encoder.num_prefix_tokens
        with torch.no_grad():
            teacher_patches = self.teacher_image_encoder.project_patches(teacher_tokens[:,
                                                                                        prefix:])
            teacher_output = self.teacher_masked_head(teacher_patches)
        grid = self._patch_grid(images)
        mask = self.sample_image_mask(images.shape[0], grid, generator).to(images.device)
        student_tokens = encoder.forward_tokens(images, mask, self.image_mask_token)
        if self.image_decoder is None:
            predicted = encoder.project_patches(student_tokens[:, prefix:])
        else:
            predicted = self.image_decoder(encoder.ln_post(student_tokens))[:, prefix:]
        student_output = self.masked_head(predicted[mask])
        loss = self.masked_distill_loss(student_output, teacher_output, mask)
        return dict(
            loss_mask_distill=self.masked_distill_weight * loss,
            mask_center_norm=self.masked_distill_loss.center.norm().detach())

    def _patch_grid(self, images: torch.Tensor) -> Tuple[int, int]:
        patch = self.image_encoder.patch_size
        return (-(-images.shape[-2] // patch), -(-images.shape[-1] // patch))

    def sample_text_mask(self,
                         token_ids: torch.Tensor,
                         generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``(N, L)`` bool mask over the content tokens with the configured ratio."""
        return text_token_mask(token_ids, self.text_mask_ratio, self.text_end_token_id,
                               self.text_special_token_ids, generator)

    def _masked_lm(self, token_ids: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mask = self.sample_text_mask(token_ids, generator)
        features = self.text_encoder.forward_tokens(token_ids, mask, self.text_mask_embedding)
        decoded = self.text_decoder(features)
        return masked_lm_loss(decoded, token_ids, mask, self.text_encoder.token_embedding.weight,
                              self.mlm_bias)
