"""LocCa-style captioning decoder (Wan et al., arXiv 2403.19596; SigLIP 2, arXiv 2502.14786,
Sec. 2.2): a transformer decoder with cross-attention to the image tokens."""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from silc_seg.registry import MODELS

TASKS = ('caption', 'aref', 'gcap')


def quantize_boxes(boxes: torch.Tensor, num_bins: int) -> torch.Tensor:
    """Bins ``0 .. num_bins - 1`` of normalised coordinates ``[0, 1]`` (``floor(c * n)``, the
    value 1 in the last bin)."""
    return (boxes.clamp(0, 1) * num_bins).long().clamp(max=num_bins - 1)


@MODELS.register_module()
class LocCaDecoder(BaseModule):
    """Captioning decoder of LocCa / SigLIP 2 on the un-pooled image tokens.

    ``depth`` pre-norm blocks (causal self-attention, cross-attention to the image tokens, MLP;
    ``nn.TransformerDecoderLayer``), a final ``LayerNorm`` and a linear layer to the logits.
    The vocabulary is the caption tokenizer's (ids ``0 .. vocab_size - 1``), then ``num_bins``
    coordinate tokens, then three task tokens (``caption``, ``aref``, ``gcap``) and one mask
    token (inputs only). Per image, three tasks as token sequences (LocCa Sec. 3):

    - caption: ``[caption] c_1 .. c_n``, loss on the caption;
    - referring expression (ARef, text -> box): ``[aref] r_1 .. r_m x0 y0 x1 y1``, loss on the
      four coordinate tokens;
    - grounded captioning (GCap, box -> text): ``[gcap] x0 y0 x1 y1 r_1 .. r_m``, loss on the
      region text;

    the last two only for images with a region (``region_valid``). A sequence ``s`` is trained
    by teacher forcing (inputs ``s[:-1]``, labels ``s[1:]``: the task token is the start
    token). A share ``parallel_prob`` of the caption sequences is trained by parallel
    prediction instead (CapPa, Tschannen et al. 2023): every input is the mask token and the
    self-attention is not causal, so the caption is predicted from the image alone.

    Args:
        vocab_size (int): Text vocabulary of the captions.
        in_channels (int): Width of the image tokens.
        embed_dims (int): Decoder width. Defaults to 512.
        depth (int): Decoder blocks. Defaults to 6.
        num_heads (int): Defaults to 8.
        mlp_ratio (float): Defaults to 4.0.
        max_length (int): Longest sequence (task token included); longer ones are cut.
            Defaults to 64.
        num_bins (int): Coordinate bins per box side. Defaults to 1000.
        parallel_prob (float): Share of caption sequences trained by parallel prediction.
            Defaults to 0.5.
        pad_token_id (int): Padding id of the tokenizer (never a target). Defaults to 0.
        init_cfg (dict | list, optional): Defaults to truncated normal (std 0.02) linear layers
            and embeddings, zero logits layer (CapPa's ``LogitsDense``).
    """

    def __init__(self,
                 vocab_size: int,
                 in_channels: int,
                 embed_dims: int = 512,
                 depth: int = 6,
                 num_heads: int = 8,
                 mlp_ratio: float = 4.0,
                 max_length: int = 64,
                 num_bins: int = 1000,
                 parallel_prob: float = 0.5,
                 pad_token_id: int = 0,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if init_cfg is None:
            init_cfg = [
                dict(type='TruncNormal', layer=['Linear', 'Embedding'], std=0.02, bias=0.),
                dict(type='Constant', layer='LayerNorm', val=1., bias=0.),
                dict(type='Constant', val=0., bias=0., override=dict(name='logits')),
            ]
        super().__init__(init_cfg=init_cfg)
        if not 0.0 <= parallel_prob <= 1.0:
            raise ValueError(f'parallel_prob must be in [0, 1], got {parallel_prob}')
        if max_length < 6:
            raise ValueError(f'max_length must hold a task token, a box and a word, got '
                             f'{max_length}')
        self.vocab_size = vocab_size
        self.num_bins = num_bins
        self.max_length = max_length
        self.parallel_prob = parallel_prob
        self.pad_token_id = pad_token_id
        self.coord_offset = vocab_size
        self.task_ids = {task: vocab_size + num_bins + i for i, task in enumerate(TASKS)}
        self.mask_token_id = vocab_size + num_bins + len(TASKS)
        self.num_classes = vocab_size + num_bins  # what the logits predict

        self.input_proj = nn.Linear(in_channels, embed_dims)
        self.token_embedding = nn.Embedding(self.mask_token_id + 1, embed_dims)
        self.pos_embed = nn.Parameter(torch.zeros(1, max_length - 1, embed_dims))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        layer = nn.TransformerDecoderLayer(
            embed_dims,
            num_heads,
            int(embed_dims * mlp_ratio),
            dropout=0.0,
            activation='gelu',
            batch_first=True,
            norm_first=True)
        self.blocks = nn.TransformerDecoder(layer, depth)
        self.norm = nn.LayerNorm(embed_dims)
        self.logits = nn.Linear(embed_dims, self.num_classes)

    def init_weights(self) -> None:
        super().init_weights()
        # nn.TransformerDecoder deep-copies one layer: give each its own attention weights.
        for block in self.blocks.layers:
            for attention in (block.self_attn, block.multihead_attn):
                nn.init.xavier_uniform_(attention.in_proj_weight)

    # ----------------------------------------------------------------------------------------
    def forward(self,
                sequences: torch.Tensor,
                image_tokens: torch.Tensor,
                parallel: bool = False) -> torch.Tensor:
        """Logits of ``sequences[:, 1:]``.

        Args:
            sequences (Tensor): ``(N, L)`` token sequences (task token first), ``L <=
                max_length``.
            image_tokens (Tensor): ``(N, T, in_channels)`` tokens the decoder attends to.
            parallel (bool): Parallel prediction (mask-token inputs, bidirectional attention)
                instead of teacher forcing.

        Returns:
            Tensor: ``(N, L - 1, vocab_size + num_bins)``.
        """
        return self.logits(self.features(sequences, image_tokens, parallel))

    def features(self,
                 sequences: torch.Tensor,
                 image_tokens: torch.Tensor,
                 parallel: bool = False) -> torch.Tensor:
        """The normalised decoder output ``(N, L - 1, embed_dims)`` before the logits layer
        (:meth:`forward`'s arguments); the loss projects only the positions it counts."""
        inputs = sequences[:, :-1]
        length = inputs.shape[1]
        if length > self.pos_embed.shape[1]:
            raise ValueError(f'sequences of {length + 1} tokens exceed max_length='
                             f'{self.max_length}')
        if parallel:
            inputs = torch.full_like(inputs, self.mask_token_id)
        x = self.token_embedding(inputs) + self.pos_embed[:, :length]
        mask = None
        if not parallel:
            mask = nn.Transformer.generate_square_subsequent_mask(
                length, device=x.device, dtype=x.dtype)
        x = self.blocks(x, self.input_proj(image_tokens), tgt_mask=mask, tgt_is_causal=False)
        return self.norm(x)

    def build_sequences(
            self,
            text: torch.Tensor,
            region_text: Optional[torch.Tensor] = None,
            region_boxes: Optional[torch.Tensor] = None,
            region_valid: Optional[torch.Tensor] = None) -> Tuple[Dict[str, torch.Tensor], ...]:
        """The tasks' token sequences of a batch (see the class docstring).

        Args:
            text (Tensor): ``(B, Lt)`` caption ids (padding: ``pad_token_id``).
            region_text (Tensor, optional): ``(B, R, Lr)`` region text ids.
            region_boxes (Tensor, optional): ``(B, R, 4)`` normalised ``x0, y0, x1, y1``.
            region_valid (Tensor, optional): ``(B, R)`` bool, which regions exist.

        Returns:
            dict[str, dict]: Per task with at least one sequence: ``sequences`` ``(N, L)``,
            ``loss_mask`` ``(N, L - 1)`` (which labels count) and ``image_index`` ``(N,)``.
        """
        rows = {task: [] for task in TASKS}
        for i in range(text.shape[0]):
            rows['caption'].append((i, [self._body(text[i])], [True]))
        if region_text is not None and region_valid is not None:
            coords = quantize_boxes(region_boxes, self.num_bins) + self.coord_offset
            for i, j in region_valid.nonzero().tolist():
                words, box = self._body(region_text[i, j]), coords[i, j]
                rows['aref'].append((i, [words, box], [False, True]))
                rows['gcap'].append((i, [box, words], [False, True]))
        out = {}
        for task, items in rows.items():
            if items:
                out[task] = self._pack(task, items, text.device)
        return out

    def _body(self, ids: torch.Tensor) -> torch.Tensor:
        return ids[ids != self.pad_token_id]

    def _pack(self, task: str, items: list, device) -> Dict[str, torch.Tensor]:
        seqs, targets = [], []
        for _, parts, counted in items:
            seq = torch.cat([torch.tensor([self.task_ids[task]], device=device), *parts])
            target = torch.cat([torch.zeros(1, dtype=torch.bool, device=device)] + [
                torch.full((len(p), ), c, dtype=torch.bool, device=device)
                for p, c in zip(parts, counted)
            ])
            seqs.append(seq[:self.max_length])
            targets.append(target[:self.max_length])
        length = max(len(s) for s in seqs)
        sequences = torch.full((len(seqs), length),
                               self.pad_token_id,
                               dtype=torch.long,
                               device=device)
        loss_mask = torch.zeros(len(seqs), length, dtype=torch.bool, device=device)
        for row, (seq, target) in enumerate(zip(seqs, targets)):
            sequences[row, :len(seq)] = seq
            loss_mask[row, :len(seq)] = target
        image_index = torch.tensor([i for i, _, _ in items], device=device)
        return dict(sequences=sequences, loss_mask=loss_mask[:, 1:], image_index=image_index)

    def loss(self,
             image_tokens: torch.Tensor,
             text: torch.Tensor,
             region_text: Optional[torch.Tensor] = None,
             region_boxes: Optional[torch.Tensor] = None,
             region_valid: Optional[torch.Tensor] = None,
             generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        """Token-mean cross-entropy of each task (``loss_caption``, ``loss_aref``,
        ``loss_gcap``; the last two 0 in a batch without regions) and the logged share of
        parallel caption sequences ``parallel_share``.

        Args:
            image_tokens (Tensor): ``(B, T, in_channels)``.
            text, region_text, region_boxes, region_valid: As :meth:`build_sequences`.
            generator (torch.Generator, optional): Draws which captions are parallel.
        """
        tasks = self.build_sequences(text, region_text, region_boxes, region_valid)
        losses = {}
        for task in TASKS:
            if task not in tasks:
                losses[f'loss_{task}'] = image_tokens.sum() * 0.0
                continue
            item = tasks[task]
            memory = image_tokens[item['image_index']]
            sequences, loss_mask = item['sequences'], item['loss_mask']
            if task != 'caption':
                losses[f'loss_{task}'] = self._ce(
                    self.features(sequences, memory), sequences, loss_mask)
                continue
            parallel = torch.rand(len(sequences), generator=generator) < self.parallel_prob
            parallel = parallel.to(sequences.device)
            total, count = image_tokens.new_zeros(()), loss_mask.sum().clamp(min=1)
            for mode in (False, True):
                rows = parallel == mode
                if rows.any():
                    features = self.features(sequences[rows], memory[rows], parallel=mode)
                    total = total + self._ce(
                        features, sequences[rows], loss_mask[rows], reduce=False)
            losses['loss_caption'] = total / count
            losses['parallel_share'] = parallel.float().mean()
        return losses

    def _ce(self, features, sequences, loss_mask, reduce=True):
        """Cross-entropy summed over the counted labels (the logits of only those positions),
        divided by their number when ``reduce``."""
        logits = self.logits(features[loss_mask])
        total = F.cross_entropy(logits, sequences[:, 1:][loss_mask], reduction='sum')
        return total / loss_mask.sum().clamp(min=1) if reduce else total
