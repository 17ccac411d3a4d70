import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import get_world_size
from mmengine.logging import MessageHub, print_log
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmpretrain.structures import DataSample

from silc_seg.models.losses.local_global_distill_loss import (distill_diagnostics,
                                                              teacher_probabilities)
from silc_seg.registry import MODELS
from ..utils.fsdp import fsdp_ema_update, is_fsdp
from ..utils.text_classifier import TextClassifier
from .teacher import TeacherSchedule, ema_update

ConfigType = Union[dict, nn.Module]


def _build(cfg):
    """Build a config dict from ``MODELS``; pass built objects (and None) through."""
    return MODELS.build(cfg) if isinstance(cfg, dict) else cfg


def _teachers_follow_loaded_students(model: 'SILC', state_dict: dict, prefix: str, *args) -> None:
    model._fill_teachers_from_students(state_dict, prefix)


@MODELS.register_module()
class SILC(BaseModel):
    """SILC: image-text contrastive pretraining with local-to-global self-distillation.

    Naeem et al., "SILC: Improving Vision Language Pretraining with Self-Distillation",
    arXiv 2310.13355. Per batch of ``B`` image-text pairs with ``Ng`` global and ``Nl`` local
    crops per image (stacked view-major, see ``docs/design.md``):

    - contrastive loss (CLIP or SigLIP) between each global view and the captions, averaged over
      the ``Ng`` global views (or over the ``contrastive_crops`` when the batch has them: views
      for the image-text loss only, with their own augmentations, see :class:`PackSILCInputs`);
    - self-distillation: an EMA teacher (``teacher_image_encoder`` + ``teacher_head``, updated
      by :meth:`train_step`, never by gradients) sees the global crops; the student's
      ``distill_head`` sees every view (globals in one forward, locals in one forward) and
      matches the teacher's centered, sharpened prototype distribution on every other view
      (:class:`LocalGlobalDistillLoss`).

    With ``distill_head=None`` the model is the plain CLIP / SigLIP baseline: no teacher is built
    and only the global crops are used.

    :meth:`train_step` updates the parameters, then (after an applied optimizer step) the
    teacher, ``teacher <- m * teacher + (1 - m) * student``, with the momentum and the teacher
    temperature of the ``teacher`` block for the current iteration (MMEngine's message hub
    ``iter`` and ``max_iters``). Under DDP, wrap the model with :class:`TrainStepDDP`; under
    FSDP (MMEngine's ``FSDPStrategy``), with :class:`TrainStepFSDP`.

    Args:
        image_encoder (dict | nn.Module): Image tower (``SILCVisionTransformer``), with
            ``encode_image(images) -> (N, J)``.
        text_encoder (dict | nn.Module): Text tower (``SILCTextTransformer``), with
            ``encode_text(token_ids) -> (N, J)``.
        tokenizer (dict | callable, optional): ``list[str] -> LongTensor (N, L)``; needed by
            :meth:`tokenize` and zero-shot classification. Defaults to None.
        contrastive_loss (dict | nn.Module): ``ClipContrastiveLoss`` or ``SigLipLoss``.
        distill_head (dict | nn.Module, optional): ``DistillationHead`` ``J -> K``; None disables
            self-distillation. Defaults to None.
        distill_loss (dict | nn.Module, optional): Defaults to ``LocalGlobalDistillLoss`` with the
            head's ``K``.
        contrastive_weight (float): Defaults to 1.0.
        distill_weight (float): Defaults to 1.0.
        teacher (dict, optional): The EMA teacher's momentum and temperature schedules, the
            arguments of :class:`TeacherSchedule`; only for a model with a teacher. Defaults
            to None (:class:`TeacherSchedule`'s defaults).
        num_global_crops (int, optional): Expected ``Ng``; checked against the batch. Without it,
            ``Ng`` is ``len(global_crops) / len(text)``. Defaults to None.
        zero_shot_classes (Sequence[str], optional): Class names for zero-shot classification in
            :meth:`predict` (sets ``pred_score``). Defaults to None.
        zero_shot_templates (Sequence[str]): Prompt templates with one ``{}`` for the class name;
            class embeddings average over them. Defaults to ``('a photo of a {}.',)``.
        data_preprocessor (dict | nn.Module, optional): Defaults to ``SILCDataPreprocessor``.
        init_cfg (dict, optional): Defaults to None.
    """

    def __init__(self,
                 image_encoder: ConfigType,
                 text_encoder: ConfigType,
                 tokenizer: Optional[ConfigType] = None,
                 contrastive_loss: ConfigType = dict(type='ClipContrastiveLoss'),
                 distill_head: Optional[ConfigType] = None,
                 distill_loss: Optional[ConfigType] = None,
                 contrastive_weight: float = 1.0,
                 distill_weight: float = 1.0,
                 teacher: Optional[dict] = None,
                 num_global_crops: Optional[int] = None,
                 zero_shot_classes: Optional[Sequence[str]] = None,
                 zero_shot_templates: Sequence[str] = ('a photo of a {}.', ),
                 data_preprocessor: Optional[ConfigType] = dict(type='SILCDataPreprocessor'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=_build(data_preprocessor), init_cfg=init_cfg)
        self.image_encoder = _build(image_encoder)
        self.text_encoder = _build(text_encoder)
        self.tokenizer = _build(tokenizer)
        self.contrastive_loss = _build(contrastive_loss)
        self.contrastive_weight = contrastive_weight
        self.distill_weight = distill_weight
        self.num_global_crops = num_global_crops

        self.with_distill = distill_head is not None
        if self.with_distill:
            self.distill_head = _build(distill_head)
            if distill_loss is None:
                distill_loss = dict(
                    type='LocalGlobalDistillLoss',
                    out_channels=self.distill_head.last_layer.out_features)
            self.distill_loss = _build(distill_loss)
            # Submodules so that checkpoints hold them (keys in docs/design.md); their weights are
            # reset to the student's in `init_weights`, take the student's weights whenever a
            # checkpoint without teacher weights loads (`_fill_teachers_from_students`), and
            # otherwise only follow the student by EMA.
            self.teacher_image_encoder = copy.deepcopy(self.image_encoder)
            self.teacher_head = copy.deepcopy(self.distill_head)
            for param in self.teacher_parameters():
                param.requires_grad_(False)
            self.train()  # puts the teacher in eval mode
        elif distill_loss is not None:
            raise ValueError('distill_loss is set but distill_head is None: set both to use '
                             'self-distillation, or neither for the contrastive-only baseline')
        temperature_keys = sorted({'temperature', 'warmup_temperature', 'warmup_iters'}
                                  & set(teacher or {}))
        if temperature_keys and not self.with_distill:
            raise ValueError(f'teacher.{temperature_keys[0]} is set, but the teacher '
                             'temperature is for the local-to-global distillation, which this '
                             'model has not (distill_head=None)')
        self.teacher_schedule = TeacherSchedule(**(teacher or {}))
        self._teacher_given = teacher is not None
        self._global_batch_size: Optional[int] = None
        self._in_train_step = False

        if zero_shot_classes is not None:
            if not zero_shot_classes:
                raise ValueError('zero_shot_classes must not be empty')
            for template in zero_shot_templates:
                if template.count('{}') != 1:
                    raise ValueError('every zero-shot template needs exactly one "{}" for the '
                                     f'class name, got {template!r}')
            if self.tokenizer is None:
                raise ValueError('zero-shot classification needs a tokenizer')
        self.zero_shot_classes = list(zero_shot_classes) if zero_shot_classes else None
        self.zero_shot_templates = list(zero_shot_templates)
        # Class names are used verbatim (no synonym splitting); one text-tower forward per class.
        self.text_classifier = TextClassifier(
            self.text_encoder,
            self.tokenizer,
            self.zero_shot_templates,
            batch_size=len(self.zero_shot_templates)) if self.zero_shot_classes else None
        # Teachers whose weights came from a checkpoint during `init_weights` (init_cfg).
        self._teachers_from_checkpoint: set = set()
        self.register_load_state_dict_pre_hook(_teachers_follow_loaded_students)

    # ----------------------------------------------------------------------------------------
    # Public API
    def tokenize(self, texts: Union[str, Sequence[str]]) -> torch.Tensor:
        """Token ids ``(N, L)`` for a string or list of strings, on the model's device."""
        if self.tokenizer is None:
            raise RuntimeError('this model was built without a tokenizer')
        if isinstance(texts, str):
            texts = [texts]
        return self.tokenizer(list(texts)).to(self._device())

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """``(N, J)`` embeddings of preprocessed images ``(N, 3, H, W)`` by the student tower."""
        embeddings = self.image_encoder.encode_image(images)
        return F.normalize(embeddings, dim=-1) if normalize else embeddings

    def encode_text(self, token_ids: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """``(N, J)`` embeddings of token ids ``(N, L)``."""
        embeddings = self.text_encoder.encode_text(token_ids)
        return F.normalize(embeddings, dim=-1) if normalize else embeddings

    def student_teacher_pairs(self) -> List[Tuple[nn.Module, nn.Module]]:
        """``(student, teacher)`` module pairs that :meth:`train_step` averages: the modules of
        :meth:`teacher_student_names`, the one list of teachers a subclass extends."""
        return [(getattr(self, student), getattr(self, teacher))
                for teacher, student in self.teacher_student_names()]

    def teacher_active(self) -> bool:
        """Whether the teacher is in use now (:meth:`train_step` skips its EMA update
        otherwise); a model that turns self-distillation on during training overrides it."""
        return True

    def teacher_parameters(self):
        for _, teacher in self.student_teacher_pairs():
            yield from teacher.parameters()

    def teacher_student_names(self) -> List[Tuple[str, str]]:
        """``(teacher, student)`` attribute names, the prefixes of their state-dict keys."""
        if not self.with_distill:
            return []
        return [('teacher_image_encoder', 'image_encoder'), ('teacher_head', 'distill_head')]

    def _fill_teachers_from_students(self, state_dict: dict, prefix: str) -> None:
        """Let the teacher follow the student when weights arrive without teacher weights.

        Runs before ``state_dict`` is loaded into this model (``load_state_dict``, MMEngine's
        ``load_checkpoint`` of ``load_from``, ``--resume`` and ``init_cfg=dict(type=
        'Pretrained')``, the converters' tower-only checkpoints). For each teacher that has no
        key in ``state_dict``, every student key present is copied to the matching teacher key,
        so the teacher loads exactly what the student loads (a CLIP-only or converted checkpoint
        gives a CLIP teacher, not a random one). A checkpoint with any weight of a teacher keeps
        that teacher's weights as they are.
        """
        for teacher, student in self.teacher_student_names():
            teacher_prefix, student_prefix = f'{prefix}{teacher}.', f'{prefix}{student}.'
            if any(key.startswith(teacher_prefix) for key in state_dict):
                self._teachers_from_checkpoint.add(teacher)
                continue
            for key in [key for key in state_dict if key.startswith(student_prefix)]:
                state_dict[teacher_prefix + key[len(student_prefix):]] = state_dict[key]

    # ----------------------------------------------------------------------------------------
    # Training
    def init_weights(self) -> None:
        self._teachers_from_checkpoint = set()
        super().init_weights()
        # Start the teacher from the student (both may have been initialized randomly and
        # independently, or the student from a tower's pretrained init_cfg), unless a
        # pretrained init_cfg of this model loaded the teacher's own weights.
        for teacher, student in self.teacher_student_names():
            if teacher not in self._teachers_from_checkpoint:
                getattr(self, teacher).load_state_dict(getattr(self, student).state_dict())
        self._teachers_from_checkpoint = set()

    def train(self, mode: bool = True) -> 'SILC':
        super().train(mode)
        # The teacher only runs inference (no dropout / drop-path, as DINO's teacher).
        for _, teacher in self.student_teacher_pairs():
            teacher.eval()
        return self

    def train_step(self,
                   data,
                   optim_wrapper: OptimWrapper,
                   ddp: Optional[nn.Module] = None) -> Dict[str, torch.Tensor]:
        """One training iteration: forward and loss (with this iteration's teacher
        temperature), ``optim_wrapper.update_params``, then, if that applied an optimizer step,
        the EMA update of every teacher with this iteration's momentum.

        A step is applied unless ``update_params`` returns False (the non-finite guard skipped
        it) or the iteration only accumulates gradients (``optim_wrapper.should_update()`` is
        False). The momentum is logged as ``ema_momentum``, the number of teacher updates is the
        message hub's ``teacher_updates`` (saved in checkpoints).

        Args:
            data (dict): A batch from the dataloader.
            optim_wrapper (OptimWrapper): Updates the student.
            ddp (nn.Module, optional): The :class:`TrainStepDDP` or :class:`TrainStepFSDP`
                wrapping this model: the forward goes through it (under FSDP the teacher is
                then updated on local shards). Defaults to None.

        Returns:
            dict[str, Tensor]: The log variables of :meth:`parse_losses` (and
            ``ema_momentum``).
        """
        pairs = self.student_teacher_pairs()
        if self._teacher_given and not pairs:
            raise ValueError(f'teacher is set, but this {type(self).__name__} has no teacher '
                             '(distill_head=None): remove the teacher block')
        model = self if ddp is None else ddp
        hub = MessageHub.get_current_instance()
        iteration, max_iters = hub.get_info('iter'), hub.get_info('max_iters')
        schedule = self.teacher_schedule
        varies = schedule.end_momentum is not None or schedule.warmup_iters > 0
        if pairs and varies and iteration is None:
            raise RuntimeError('the teacher schedule needs the iteration: run in an MMEngine '
                               "Runner or set the message hub's 'iter' (and 'max_iters')")
        iteration = iteration or 0
        with optim_wrapper.optim_context(model):
            data = self.data_preprocessor(data, True)
            if self.with_distill:
                data = dict(data, teacher_temp=schedule.temperature_at(iteration))
            losses = model._run_forward(data, mode='loss')
        self._in_train_step = True
        try:
            parsed_losses, log_vars = self.parse_losses(losses)
        finally:
            self._in_train_step = False
        applied = optim_wrapper.update_params(parsed_losses)
        if (not pairs or not self.teacher_active() or applied is False
                or not optim_wrapper.should_update()):
            return log_vars
        batch_size = None
        if schedule.base_batch_size is not None:
            batch_size = self._global_batch(data, optim_wrapper)
        if schedule.needs_max_iters and max_iters is None:
            raise RuntimeError("a cosine teacher momentum needs the message hub's 'max_iters' "
                               '(set by the Runner) or teacher.momentum_iters')
        momentum = schedule.momentum_at(iteration, max_iters, batch_size)
        if is_fsdp(ddp):  # sharded teacher: each rank averages its own shards
            fsdp_ema_update(ddp, self.teacher_student_names(), momentum)
        else:
            for student, teacher in pairs:
                ema_update(teacher, student, momentum)
        hub.update_info('teacher_updates', hub.get_info('teacher_updates', 0) + 1)
        log_vars['ema_momentum'] = momentum
        return log_vars

    def _global_batch(self, data: dict, optim_wrapper: OptimWrapper) -> int:
        """Samples behind one optimizer update (per-process batch x world size x gradient
        accumulation), fixed at the first update so that every rank uses the same value."""
        if self._global_batch_size is None:
            local = data['inputs']['text'].shape[0]
            accumulate = getattr(optim_wrapper, '_accumulative_counts', 1)
            self._global_batch_size = int(local) * get_world_size() * int(accumulate)
            base = self.teacher_schedule.base_batch_size
            print_log(
                f'EMA teacher: global batch {self._global_batch_size} per update, '
                f'momentum tuned for {base}: {self.teacher_schedule.momentum} -> '
                f'{self.teacher_schedule.momentum_at(0, 1, self._global_batch_size):.6f}',
                logger='current')
        return self._global_batch_size

    def parse_losses(self, losses: Dict[str, torch.Tensor]):
        if (self.training and not self._in_train_step and get_world_size() > 1
                and self.student_teacher_pairs()):
            raise RuntimeError(
                f'{type(self).__name__} updates its EMA teacher in its own train_step, which '
                'this model wrapper bypasses: set '
                "model_wrapper_cfg=dict(type='mmseg.TrainStepDDP') (under FSDPStrategy: "
                "strategy.model_wrapper=dict(type='mmseg.TrainStepFSDP'))")
        return super().parse_losses(losses)

    def forward(self,
                inputs: Dict[str, torch.Tensor],
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor',
                teacher_temp: Optional[float] = None):
        """MMEngine entry point.

        Args:
            inputs (dict): ``global_crops``, ``local_crops`` and ``text`` for ``'loss'``;
                ``image`` and/or ``text`` for ``'predict'`` and ``'tensor'``.
            data_samples (list[DataSample], optional): One per sample.
            mode (str): ``'loss'`` (dict of losses and logged scalars), ``'predict'`` (data
                samples with embeddings) or ``'tensor'`` (dict of normalized embeddings).
            teacher_temp (float, optional): Teacher temperature for ``'loss'``; see
                :meth:`loss`.
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples, teacher_temp)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._embed(inputs)
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, predict and tensor mode')

    def loss(self,
             inputs: Dict[str, torch.Tensor],
             data_samples: Optional[List[DataSample]] = None,
             teacher_temp: Optional[float] = None) -> Dict[str, torch.Tensor]:
        """Loss terms (``loss_contrastive``, ``loss_distill``) and logged scalars (``logit_scale``,
        ``logit_bias``, ``teacher_temp``, ``center_norm``, and the distillation diagnostics of
        :func:`distill_diagnostics`: ``teacher_entropy``, ``student_teacher_kl``,
        ``prototypes_used``) of a pretraining batch. ``teacher_temp`` is the distillation's
        teacher temperature; None: ``teacher.temperature`` (after any warm-up)."""
        for key in ('global_crops', 'text'):
            if key not in inputs:
                raise KeyError(f'SILC training inputs need "{key}", got {sorted(inputs)}')
        global_crops, text = inputs['global_crops'], inputs['text']
        batch_size = text.shape[0]
        num_global = self._num_views(global_crops, batch_size, 'global_crops')
        if self.num_global_crops is not None and num_global != self.num_global_crops:
            raise ValueError(f'expected {self.num_global_crops} global crops per sample, got '
                             f'{num_global} ({global_crops.shape[0]} crops for {batch_size} '
                             'captions)')

        # The image-text loss sees the global crops themselves, or, when the pipeline packs
        # them, separate `contrastive_crops` (e.g. without the colour augmentations that would
        # contradict colour words of the captions; see PackSILCInputs).
        contrastive_crops = inputs.get('contrastive_crops')
        global_embeddings = None
        if contrastive_crops is None:
            global_embeddings = self.image_encoder.encode_image(global_crops)
            contrastive_embeddings, num_contrastive = global_embeddings, num_global
        else:
            num_contrastive = self._num_views(contrastive_crops, batch_size, 'contrastive_crops')
            contrastive_embeddings = self.image_encoder.encode_image(contrastive_crops)
        losses = self.contrastive_losses(contrastive_embeddings, text, num_contrastive)

        teacher_tokens = None
        if 'teacher_image_encoder' in self._modules:
            # One teacher pass over the global crops serves every self-distillation term (SILC's
            # pooled targets and a subclass's patch targets).
            with torch.no_grad():
                teacher_tokens = self.teacher_image_encoder.forward_tokens(global_crops)
        if teacher_temp is None:
            teacher_temp = self.teacher_schedule.temperature
        losses.update(
            self.self_distill_losses(inputs, global_embeddings, teacher_tokens, batch_size,
                                     teacher_temp))
        return losses

    def self_distill_losses(self, inputs: Dict[str, torch.Tensor],
                            global_embeddings: Optional[torch.Tensor],
                            teacher_tokens: Optional[torch.Tensor], batch_size: int,
                            teacher_temp: float) -> Dict[str, torch.Tensor]:
        """The self-distillation terms of a batch: SILC's local-to-global distillation (none
        without ``distill_head``). Subclasses with other teacher-student terms extend it.

        Args:
            inputs (dict[str, Tensor]): The batch, as :meth:`loss` gets it.
            global_embeddings (Tensor, optional): The student's embeddings of the global crops
                when the image-text loss already computed them, else None.
            teacher_tokens (Tensor, optional): The teacher tower's
                :meth:`~SILCVisionTransformer.forward_tokens` of the global crops (no
                gradient), None without a teacher.
            batch_size (int): Captions in the batch.
            teacher_temp (float): Teacher temperature of the local-to-global distillation.

        Returns:
            dict[str, Tensor]: Loss terms and logged scalars.
        """
        if not self.with_distill:
            return {}
        return self._distill(inputs['global_crops'], global_embeddings, inputs.get('local_crops'),
                             teacher_tokens, batch_size, teacher_temp)

    def _distill(self, global_crops, global_embeddings, local_crops, teacher_tokens, batch_size,
                 teacher_temp):
        if global_embeddings is None:
            global_embeddings = self.image_encoder.encode_image(global_crops)
        student_embeddings = [global_embeddings]
        if local_crops is not None and local_crops.numel():
            self._num_views(local_crops, batch_size, 'local_crops')
            student_embeddings.append(self.image_encoder.encode_image(local_crops))
        student_output = self.distill_head(torch.cat(student_embeddings))
        with torch.no_grad():
            # pool(forward_tokens(x)) is encode_image(x): the teacher's global embeddings.
            teacher_output = self.teacher_head(self.teacher_image_encoder.pool(teacher_tokens))
        # The targets as the loss sees them (before it updates the center), for the log.
        targets = teacher_probabilities(teacher_output, self.distill_loss.center, teacher_temp)
        distill = self.distill_loss(student_output, teacher_output, batch_size, teacher_temp)
        return dict(
            loss_distill=self.distill_weight * distill,
            teacher_temp=torch.tensor(float(teacher_temp), device=distill.device),
            center_norm=self.distill_loss.center.norm().detach(),
            **distill_diagnostics(student_output.detach(), targets, batch_size,
                                  self.distill_loss.student_temp))

    def contrastive_losses(self, image_embeddings: torch.Tensor, text: torch.Tensor,
                           num_views: int) -> Dict[str, torch.Tensor]:
        """The image-text loss, averaged over the views of each caption.

        Args:
            image_embeddings (Tensor): (num_views * B, D) pooled image embeddings, view-major.
            text (Tensor): (B, L) caption token ids.
            num_views (int): image views per caption.

        Returns:
            dict: ``loss_contrastive`` (times ``contrastive_weight``) and the loss's logged
            ``logit_scale`` and, where it has one, ``logit_bias``.
        """
        text_features = F.normalize(self.text_encoder.encode_text(text), dim=-1)
        image_features = F.normalize(image_embeddings, dim=-1)
        contrastive = sum(
            self.contrastive_loss(view, text_features)
            for view in image_features.split(text.shape[0])) / num_views
        losses = dict(loss_contrastive=self.contrastive_weight * contrastive)
        scale, bias = self.contrastive_loss.logit_params()
        losses['logit_scale'] = scale.detach()
        if bias is not None:
            losses['logit_bias'] = bias.detach()
        return losses

    @staticmethod
    def _num_views(crops: torch.Tensor, batch_size: int, name: str) -> int:
        if crops.dim() != 4 or crops.shape[0] % batch_size or crops.shape[0] == 0:
            raise ValueError(f'{name} must be (num_views * {batch_size}, 3, H, W) for '
                             f'{batch_size} captions, got {tuple(crops.shape)}')
        return crops.shape[0] // batch_size

    # ----------------------------------------------------------------------------------------
    # Inference
    def _embed(self, inputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        embeddings = {}
        if 'image' in inputs:
            embeddings['image_embedding'] = self.encode_image(inputs['image'])
        if 'text' in inputs:
            embeddings['text_embedding'] = self.encode_text(inputs['text'])
        if not embeddings:
            raise KeyError(f'expected "image" and/or "text" inputs, got {sorted(inputs)}')
        return embeddings

    def predict(self,
                inputs: Dict[str, torch.Tensor],
                data_samples: Optional[List[DataSample]] = None) -> List[DataSample]:
        """Data samples with L2-normalized ``image_embedding`` / ``text_embedding`` and, when
        ``zero_shot_classes`` is set, ``pred_score`` (softmax over the class logits)."""
        embeddings = self._embed(inputs)
        batch_size = next(iter(embeddings.values())).shape[0]
        if data_samples is None:
            data_samples = [DataSample() for _ in range(batch_size)]
        scores = None
        if self.zero_shot_classes is not None and 'image_embedding' in embeddings:
            scores = self.zero_shot_scores(embeddings['image_embedding'])
        for i, sample in enumerate(data_samples):
            for key, value in embeddings.items():
                sample.set_field(value[i], key)
            if scores is not None:
                sample.set_pred_score(scores[i])
        return data_samples

    def class_embeddings(self) -> torch.Tensor:
        """``(num_classes, J)`` normalized class embeddings (template-averaged), cached by the
        text classifier until the text tower's weights change."""
        if self.text_classifier is None:
            raise RuntimeError('this model was built without zero_shot_classes')
        return self.text_classifier([[name] for name in self.zero_shot_classes]).embeddings

    def zero_shot_scores(self, image_embeddings: torch.Tensor) -> torch.Tensor:
        """Softmax over ``scale * cos(image, class) (+ bias)`` for normalized image embeddings."""
        scale, bias = self.contrastive_loss.logit_params()
        logits = scale.detach() * image_embeddings @ self.class_embeddings().T
        if bias is not None:
            logits = logits + bias.detach()
        return logits.softmax(dim=-1)

    def _device(self) -> torch.device:
        return next(self.parameters()).device
