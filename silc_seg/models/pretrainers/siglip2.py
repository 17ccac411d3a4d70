"""The SigLIP 2 training recipe (Tschannen et al., arXiv 2502.14786, Sec. 2.2-2.3)."""
from typing import Dict, List, Optional

import torch
from mmengine.dist import get_dist_info
from mmengine.logging import MessageHub, print_log
from mmengine.optim import OptimWrapper
from mmpretrain.structures import DataSample

from silc_seg.registry import MODELS
from .masked_self_distill import MaskedSelfDistill
from .silc import ConfigType, _build


@MODELS.register_module()
class SigLIP2(MaskedSelfDistill):
    """Sigmoid image-text loss + LocCa decoder, then SILC self-distillation and masked
    prediction for the last part of the schedule (SigLIP 2).

    From iteration 0: the sigmoid loss (``contrastive_loss``, e.g. ``SigLipLoss``) between the
    contrastive view (``contrastive_crops``, the whole image; the global crops when the batch
    has none) and the captions, and ``caption_decoder`` (:class:`LocCaDecoder`) on the
    student's un-pooled tokens of the first such view per image (captions, and the box tasks
    for images with regions), ``loss_caption`` / ``loss_aref`` / ``loss_gcap``, each times
    ``decoder_weight``.

    At the switch, iteration ``switch_iter`` (default ``round(switch_ratio * max_iters)``), the
    EMA teacher is set to the student (``teacher_image_encoder <- image_encoder``, the teacher
    heads <- the student heads, which no loss has touched yet, so they are still at their
    initialisation, as are their optimizer states), and from then on SILC's local-to-global
    distillation (``loss_distill``) and masked prediction (``loss_mask_distill``: per-patch,
    see :class:`MaskedSelfDistill`, with ``image_decoder=None`` for SigLIP 2's per-patch
    features) join in, and the teacher follows the student by EMA after every step. One line is
    logged at the switch. The buffer ``self_distill_on`` records the stage in checkpoints, so
    ``--resume`` before or after the switch continues exactly as an uninterrupted run.

    Args:
        caption_decoder (dict | nn.Module): ``LocCaDecoder`` (``in_channels`` = image width).
        decoder_weight (float): Weight of each decoder task loss. Defaults to 1.0.
        switch_ratio (float): Fraction of ``max_iters`` at which self-distillation starts.
            Defaults to 0.8.
        switch_iter (int, optional): Absolute switch iteration (overrides ``switch_ratio``).
        **kwargs: :class:`MaskedSelfDistill`'s arguments (``distill_head`` is required).
    """

    def __init__(self,
                 caption_decoder: ConfigType,
                 decoder_weight: float = 1.0,
                 switch_ratio: float = 0.8,
                 switch_iter: Optional[int] = None,
                 **kwargs) -> None:
        if kwargs.get('distill_head') is None:
            raise ValueError('SigLIP2 needs distill_head (the local-to-global distillation '
                             'that starts at the switch)')
        if kwargs.get('text_decoder') is not None:
            raise ValueError('SigLIP2 has no masked language modelling: remove text_decoder')
        if not 0.0 <= switch_ratio <= 1.0:
            raise ValueError(f'switch_ratio must be in [0, 1], got {switch_ratio}')
        if switch_iter is not None and switch_iter < 0:
            raise ValueError(f'switch_iter must be >= 0, got {switch_iter}')
        kwargs.setdefault('image_decoder', None)  # per-patch features, as TIPS / SigLIP 2
        super().__init__(**kwargs)
        self.caption_decoder = _build(caption_decoder)
        self.decoder_weight = decoder_weight
        self.switch_ratio = switch_ratio
        self.switch_iter = switch_iter
        # Saved in checkpoints: whether the second stage has begun.
        self.register_buffer('self_distill_on', torch.zeros((), dtype=torch.bool))
        # Training batches seen by the decoder; seeds its parallel-prediction draws.
        self.register_buffer('decoder_step', torch.zeros((), dtype=torch.long))

    # ----------------------------------------------------------------------------------------
    def teacher_active(self) -> bool:
        return bool(self.self_distill_on)

    def switch_iteration(self, max_iters: Optional[int]) -> int:
        """The first iteration (0-based) of the self-distillation stage."""
        if self.switch_iter is not None:
            return self.switch_iter
        if max_iters is None:
            raise RuntimeError('the stage switch needs the run length: run in an MMEngine '
                               "Runner (message hub 'max_iters') or set switch_iter")
        return int(round(self.switch_ratio * max_iters))

    @torch.no_grad()
    def start_self_distillation(self, iteration: int) -> None:
        """Teacher <- student, then turn the self-distillation losses on."""
        for student, teacher in self.student_teacher_pairs():
            teacher.load_state_dict(student.state_dict())
        self.self_distill_on.fill_(True)
        print_log(
            f'SigLIP 2 stage switch at iteration {iteration}: local-to-global '
            'self-distillation and masked prediction on, EMA teacher initialised from '
            'the student',
            logger='current')

    def train_step(self, data, optim_wrapper: OptimWrapper, ddp=None) -> Dict[str, torch.Tensor]:
        """:meth:`SILC.train_step`, switching stages first when this iteration is the
        switch (or later, for a run resumed from a checkpoint of the first stage)."""
        hub = MessageHub.get_current_instance()
        iteration = hub.get_info('iter') or 0
        if not bool(self.self_distill_on) and iteration >= self.switch_iteration(
                hub.get_info('max_iters')):
            self.start_self_distillation(iteration)
        log_vars = super().train_step(data, optim_wrapper, ddp)
        log_vars['self_distill_on'] = float(bool(self.self_distill_on))
        return log_vars

    # ----------------------------------------------------------------------------------------
    def loss(self,
             inputs: Dict[str, torch.Tensor],
             data_samples: Optional[List[DataSample]] = None,
             teacher_temp: Optional[float] = None) -> Dict[str, torch.Tensor]:
        """``loss_contrastive``, the decoder's ``loss_caption`` / ``loss_aref`` /
        ``loss_gcap`` (and ``parallel_share``), and after the switch the terms of
        :meth:`MaskedSelfDistill.self_distill_losses`."""
        for key in ('global_crops', 'text'):
            if key not in inputs:
                raise KeyError(f'SigLIP2 training inputs need "{key}", got {sorted(inputs)}')
        text = inputs['text']
        batch_size = text.shape[0]
        views = inputs.get('contrastive_crops')
        if views is None:
            views = inputs['global_crops']
        num_views = self._num_views(views, batch_size, 'contrastive views')
        encoder = self.image_encoder
        tokens = encoder.forward_tokens(views)
        embeddings = encoder.pool(tokens)
        losses = self.contrastive_losses(embeddings, text, num_views)

        decoded = self.caption_decoder.loss(
            encoder.ln_post(tokens[:batch_size]),
            text,
            inputs.get('region_text'),
            inputs.get('region_boxes'),
            inputs.get('region_valid'),
            generator=self._decoder_generator())
        for key, value in decoded.items():
            losses[key] = self.decoder_weight * value if key.startswith('loss_') else value
        if self.training:
            self.decoder_step += 1

        if bool(self.self_distill_on):
            global_crops = inputs['global_crops']
            with torch.no_grad():
                teacher_tokens = self.teacher_image_encoder.forward_tokens(global_crops)
            if teacher_temp is None:
                teacher_temp = self.teacher_schedule.temperature
            global_embeddings = embeddings if 'contrastive_crops' not in inputs else None
            losses.update(
                self.self_distill_losses(inputs, global_embeddings, teacher_tokens, batch_size,
                                         teacher_temp))
        return losses

    def _decoder_generator(self) -> torch.Generator:
        rank, world_size = get_dist_info()
        base = self.mask_seed if self.mask_seed is not None else torch.initial_seed()
        seed = (base * 999_983 + 7 + int(self.decoder_step) * world_size + rank) % (2**63 - 1)
        return torch.Generator().manual_seed(seed)
