"""The text tower: CLIP-style (causal, EOT pooling) or SigLIP-style (bidirectional) transformer."""
from typing import List, Optional, Union

import torch
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from torch import Tensor, nn

from silc_seg.registry import MODELS
from silc_seg.utils.checkpoint import init_weights_checked
from ..layers.transformer import TransformerBlock
from ..utils.arch import resolve_arch

POOL_TYPES = ('argmax', 'eos', 'last', 'first')


@MODELS.register_module()
class SILCTextTransformer(BaseModule):
    """Transformer text tower of CLIP, SigLIP and SILC.

    Token embedding + learned positional embedding, pre-norm blocks (causal attention for
    CLIP, bidirectional for SigLIP), ``ln_final``, pooling of one token and a linear
    ``text_projection`` to the joint space.

    Args:
        arch (str | dict): preset (``'tiny'``, ``'clip-b'``: OpenAI/OpenCLIP B text tower,
            ``'clip-l'``: L/14 text tower, ``'siglip-b'``: SigLIP B text tower) or a dict with
            ``width``, ``depth``, ``num_heads`` and optionally any other argument below.
            Defaults to ``'clip-b'``. Explicit arguments below override the preset.
        context_length (int, optional): maximum number of tokens.
        vocab_size (int, optional): vocabulary size.
        width (int, optional): token channels.
        depth (int, optional): number of blocks.
        num_heads (int, optional): attention heads.
        mlp_ratio (float, optional): MLP hidden channels relative to ``width``.
        output_dim (int, optional): joint embedding size; 0 disables the projection.
        causal (bool, optional): causal attention mask (CLIP) or none (SigLIP).
        pool_type (str, optional): which token represents the text: ``'argmax'`` (the highest
            id, CLIP's end-of-text token), ``'eos'`` (first ``eos_token_id``), ``'last'``
            (SigLIP; its token ids are padded to ``context_length``) or ``'first'``.
        eos_token_id (int, optional): end-of-text id for ``pool_type='eos'``.
        proj_bias (bool, optional): bias in ``text_projection`` (SigLIP).
        act (str, optional): MLP activation (``'gelu'``, ``'gelu_tanh'``, ``'quick_gelu'``).
        norm_eps (float, optional): LayerNorm epsilon.
        layer_scale_init (float, optional): LayerScale initial value; None disables it.
        with_cp (bool): activation checkpointing of every block while training.
        init_cfg (dict | list, optional): e.g. ``dict(type='Pretrained', checkpoint=...,
            prefix='text_encoder.')``.
    """
    arch_zoo = {
        'tiny':
        dict(context_length=77, vocab_size=49408, width=256, depth=4, num_heads=4, output_dim=128),
        'clip-b':
        dict(
            context_length=77, vocab_size=49408, width=512, depth=12, num_heads=8, output_dim=512),
        'clip-l':
        dict(
            context_length=77, vocab_size=49408, width=768, depth=12, num_heads=12,
            output_dim=768),
        'siglip-b':
        dict(
            context_length=64,
            vocab_size=32000,
            width=768,
            depth=12,
            num_heads=12,
            output_dim=768,
            causal=False,
            pool_type='last',
            proj_bias=True,
            norm_eps=1e-6),
    }
    defaults = dict(
        mlp_ratio=4.0,
        causal=True,
        pool_type='argmax',
        eos_token_id=None,
        proj_bias=False,
        act='gelu',
        norm_eps=1e-5,
        layer_scale_init=None)

    def __init__(self,
                 arch: Union[str, dict] = 'clip-b',
                 context_length: Optional[int] = None,
                 vocab_size: Optional[int] = None,
                 width: Optional[int] = None,
                 depth: Optional[int] = None,
                 num_heads: Optional[int] = None,
                 mlp_ratio: Optional[float] = None,
                 output_dim: Optional[int] = None,
                 causal: Optional[bool] = None,
                 pool_type: Optional[str] = None,
                 eos_token_id: Optional[int] = None,
                 proj_bias: Optional[bool] = None,
                 act: Optional[str] = None,
                 norm_eps: Optional[float] = None,
                 layer_scale_init: Optional[float] = None,
                 with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        if init_cfg is None:
            init_cfg = [
                dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
                dict(type='Constant', layer='LayerNorm', val=1., bias=0.),
            ]
        super().__init__(init_cfg=init_cfg)
        overrides = dict(
            context_length=context_length,
            vocab_size=vocab_size,
            width=width,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            output_dim=output_dim,
            causal=causal,
            pool_type=pool_type,
            eos_token_id=eos_token_id,
            proj_bias=proj_bias,
            act=act,
            norm_eps=norm_eps,
            layer_scale_init=layer_scale_init)
        settings = resolve_arch(
            arch,
            self.arch_zoo,
            overrides,
            custom_defaults=dict(context_length=77, vocab_size=49408, output_dim=512),
            base=self.defaults)
        if settings['pool_type'] not in POOL_TYPES:
            raise ValueError(f"unknown pool_type {settings['pool_type']!r}; "
                             f'choose from {POOL_TYPES}')
        if settings['pool_type'] == 'eos' and settings['eos_token_id'] is None:
            raise ValueError("pool_type='eos' needs eos_token_id")

        self.context_length = settings['context_length']
        self.vocab_size = settings['vocab_size']
        self.width = width = settings['width']
        self.depth = settings['depth']
        self.causal = settings['causal']
        self.pool_type = settings['pool_type']
        self.eos_token_id = settings['eos_token_id']
        self.output_dim = settings['output_dim'] or width
        self.with_cp = with_cp

        self.token_embedding = nn.Embedding(self.vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.zeros(self.context_length, width))
        self.blocks = nn.ModuleList([
            TransformerBlock(
                width,
                settings['num_heads'],
                mlp_ratio=settings['mlp_ratio'],
                act=settings['act'],
                norm_eps=settings['norm_eps'],
                layer_scale_init=settings['layer_scale_init']) for _ in range(self.depth)
        ])
        self.ln_final = nn.LayerNorm(width, eps=settings['norm_eps'])
        self.text_projection = nn.Linear(
            width, settings['output_dim'],
            bias=settings['proj_bias']) if settings['output_dim'] else nn.Identity()
        self._init_embeddings()

    def _init_embeddings(self):
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)

    def init_weights(self):
        # A Pretrained init_cfg loads through silc-seg's checked loader: missing keys and
        # tensors of another shape are errors (MMEngine's PretrainedInit only logs them).
        if not init_weights_checked(self, super().init_weights):
            self._init_embeddings()

    def _pool(self, x: Tensor, token_ids: Tensor) -> Tensor:
        rows = torch.arange(x.shape[0], device=x.device)
        if self.pool_type == 'argmax':
            return x[rows, token_ids.argmax(dim=-1)]
        if self.pool_type == 'eos':
            is_eos = token_ids == self.eos_token_id
            if not is_eos.any(dim=-1).all():
                raise ValueError(f'a text has no end-of-text token {self.eos_token_id}')
            return x[rows, is_eos.int().argmax(dim=-1)]
        if self.pool_type == 'last':
            return x[:, -1]
        return x[:, 0]

    def trim_padding(self, token_ids: Tensor) -> Tensor:
        """Drop the trailing token columns that cannot change :meth:`forward`'s output.

        With causal attention, token ``i``'s output depends only on tokens ``0..i`` (attention,
        LayerNorm and MLP act per token otherwise), so every column after the last pooled
        position of the batch can go; the pooled position of every row (first highest id, or
        first ``eos_token_id``) lies inside the kept prefix and stays the same. A bidirectional
        tower (SigLIP) or ``'last'``/``'first'`` pooling gets ``token_ids`` back unchanged.

        Args:
            token_ids (Tensor): ``(N, L)`` token ids.

        Returns:
            Tensor: ``(N, L')`` token ids, ``L' <= L``.
        """
        if not self.causal or self.pool_type not in ('argmax', 'eos') or token_ids.numel() == 0:
            return token_ids
        if self.pool_type == 'argmax':
            pooled = token_ids.argmax(dim=-1)
        else:
            is_eos = token_ids == self.eos_token_id
            if not is_eos.any(dim=-1).all():
                return token_ids  # forward raises its own error for such rows
            pooled = is_eos.int().argmax(dim=-1)
        return token_ids[:, :int(pooled.max()) + 1]

    def forward(self, token_ids: Tensor) -> Tensor:
        """Text embeddings in the joint space.

        Args:
            token_ids (Tensor): ``(N, L)`` token ids, ``L <= context_length``.

        Returns:
            Tensor: ``(N, output_dim)`` embeddings, not normalized.
        """
        x = self.forward_tokens(token_ids)
        return self.text_projection(self._pool(x, token_ids))

    def forward_tokens(self,
                       token_ids: Tensor,
                       token_mask: Optional[Tensor] = None,
                       mask_embedding: Optional[Tensor] = None) -> Tensor:
        """Per-token features after ``ln_final`` (the input of the pooling).

        Args:
            token_ids (Tensor): ``(N, L)`` token ids, ``L <= context_length``.
            token_mask (Tensor, optional): ``(N, L)`` bool, True where a token is masked: its
                token embedding is replaced by ``mask_embedding`` (masked language modelling;
                the vocabularies have no mask id of their own).
            mask_embedding (Tensor, optional): ``(width,)``; needed with ``token_mask``.

        Returns:
            Tensor: ``(N, L, width)``.
        """
        if token_ids.dim() != 2:
            raise ValueError(f'expected (N, L) token ids, got shape {tuple(token_ids.shape)}')
        length = token_ids.shape[1]
        if length > self.context_length:
            raise ValueError(f'{length} tokens exceed the context length {self.context_length}')
        x = self.token_embedding(token_ids)
        if token_mask is not None:
            if mask_embedding is None:
                raise ValueError('token_mask needs a mask_embedding')
            if token_mask.shape != token_ids.shape:
                raise ValueError(f'token_mask must be {tuple(token_ids.shape)}, got '
                                 f'{tuple(token_mask.shape)}')
            x = torch.where(token_mask.unsqueeze(-1), mask_embedding.to(x.dtype), x)
        x = x + self.positional_embedding[:length]
        for block in self.blocks:
            if self.with_cp and self.training and x.requires_grad:
                x = cp.checkpoint(block, x, None, self.causal, use_reentrant=False)
            else:
                x = block(x, is_causal=self.causal)
        return self.ln_final(x)

    def encode_text(self, token_ids: Tensor) -> Tensor:
        """Alias of :meth:`forward`."""
        return self(token_ids)
