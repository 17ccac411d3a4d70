"""The image tower: a CLIP/SigLIP/SILC Vision Transformer usable as an MMSeg backbone."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks.transformer import PatchEmbed
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor, nn

from silc_seg.registry import MODELS
from silc_seg.utils.checkpoint import init_weights_checked
from ..layers.attention_pool import AttentionPoolLatent
from ..layers.dense_attention import last_block_forward
from ..layers.transformer import TransformerBlock
from ..utils.arch import resolve_arch

POOL_TYPES = ('cls', 'gap', 'map')
POS_EMBED_RESIZE_MODES = ('size', 'scale_factor')


@MODELS.register_module()
class SILCVisionTransformer(BaseModule):
    """Vision Transformer image tower of CLIP, SigLIP and SILC.

    Conv patch embedding, optional class token, learned positional embedding (bicubic-resized
    to the input grid, see ``pos_embed_resize``), optional ``ln_pre`` (OpenAI CLIP), pre-norm
    blocks, final norm ``ln_post``, pooling and projection to the joint image-text space. It
    serves three uses:

    - MMSeg backbone: :meth:`forward` returns ``(B, width, H/p, W/p)`` maps after the blocks
      in ``out_indices`` (the last one after ``ln_post`` when ``final_norm``). It does not use
      the pooling and projection: under distributed training set
      ``model_wrapper_cfg=dict(type='MMDistributedDataParallel', find_unused_parameters=True)``.
    - Image embedding: :meth:`encode_image` returns the pooled, projected ``(B, output_dim)``.
    - Dense embedding: :meth:`encode_dense` applies the pooling's per-token path and the
      projection to every patch token (see its docstring).

    Args:
        arch (str | dict): preset (``'tiny'``, ``'s16'``, ``'b16'``, ``'b32'``, ``'l14'``) or a
            dict with ``width``, ``depth``, ``num_heads`` and optionally ``patch_size``,
            ``mlp_ratio``. Defaults to ``'b16'``.
        img_size (int | tuple): training image size, which sets the size of the stored
            positional embedding. Defaults to 224.
        patch_size (int, optional): overrides the preset's patch size.
        width (int, optional): overrides the preset's token channels.
        depth (int, optional): overrides the preset's number of blocks.
        num_heads (int, optional): overrides the preset's attention heads.
        mlp_ratio (float, optional): overrides the preset's MLP ratio.
        output_dim (int, optional): joint embedding size; None: no projection (SigLIP), the
            embedding is the ``width``-dim pooled token. Defaults to 512.
        proj_bias (bool): bias in the projection (big_vision image heads). Defaults to False.
        pool_type (str): ``'cls'`` (class token), ``'gap'`` (mean of the patch tokens) or
            ``'map'`` (multihead attention pooling with a learned probe, SigLIP).
            Defaults to ``'cls'``.
        class_token (bool): whether there is a class token. Defaults to True.
        ln_pre (bool, optional): LayerNorm after the embeddings. None: the preset's (True for
            ``'b16'``, ``'b32'``, ``'l14'``, the layouts of OpenAI CLIP, OpenCLIP and SILC
            checkpoints; False for ``'tiny'``, ``'s16'`` and custom dicts). SigLIP towers set
            False. Defaults to None.
        act (str): MLP activation: ``'gelu'``, ``'gelu_tanh'`` or ``'quick_gelu'`` (OpenAI
            weights). Defaults to ``'gelu'``.
        patch_bias (bool): bias in the patch embedding (timm/big_vision: True, OpenAI: False).
            Defaults to False.
        qkv_bias (bool): bias in the qkv projections. Defaults to True.
        norm_eps (float): LayerNorm epsilon (1e-5 OpenAI/OpenCLIP, 1e-6 timm/big_vision).
            Defaults to 1e-5.
        layer_scale_init (float, optional): LayerScale initial value; None disables it.
        drop_path_rate (float): stochastic depth rate, linearly increasing over the blocks.
        out_indices (int | Sequence[int]): blocks whose output :meth:`forward` returns;
            negative indices count from the end. Defaults to -1.
        final_norm (bool): apply ``ln_post`` to the last block's output in :meth:`forward`.
            Defaults to True.
        frozen_stages (int): -1: train everything; 0: freeze the embeddings; ``n``: also
            freeze the first ``n`` blocks (and, when ``n == depth``, ``ln_post``, pooling and
            projection). Defaults to -1.
        with_cp (bool): activation checkpointing of every block while training.
        pos_embed_resize (str): how the stored positional embedding is resized to another patch
            grid. ``'size'``: bicubic to exactly the new grid (MMPretrain's
            ``resize_pos_embed``). ``'scale_factor'``: bicubic with scale factors
            ``(grid + 0.1) / stored grid`` per side, as the OpenAI-CLIP-based references
            (``interpolate_pos_encoding`` in wangf3014/SCLIP and sinahmr/NACLIP
            ``clip/model.py``, mc-lan/ClearCLIP ``open_clip/transformer.py``); it is skipped
            only when the token count matches and the image is square, as there. The two
            differ slightly (PyTorch samples with the given factor, not the size ratio).
            Defaults to ``'size'``.
        init_cfg (dict | list, optional): e.g. ``dict(type='Pretrained', checkpoint=...,
            prefix='image_encoder.')`` for SILC / converted checkpoints.
        pretrained (None): MMSeg's deprecated ``model.pretrained``; must be None (see
            ``init_cfg``).
    """
    arch_zoo = {
        'tiny': dict(width=192, depth=6, num_heads=3, patch_size=16, mlp_ratio=4.0),
        's16': dict(width=384, depth=12, num_heads=6, patch_size=16, mlp_ratio=4.0),
        # The CLIP-family presets have ln_pre, as the checkpoints made for them.
        'b16': dict(width=768, depth=12, num_heads=12, patch_size=16, mlp_ratio=4.0, ln_pre=True),
        'b32': dict(width=768, depth=12, num_heads=12, patch_size=32, mlp_ratio=4.0, ln_pre=True),
        'l14': dict(width=1024, depth=24, num_heads=16, patch_size=14, mlp_ratio=4.0, ln_pre=True),
    }

    # Loaded with the grid resized to ``img_size`` (see ``_resize_checkpoint_pos_embed``).
    checkpoint_resizable_keys = ('pos_embed', )

    def __init__(self,
                 arch: Union[str, dict] = 'b16',
                 img_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: Optional[int] = None,
                 width: Optional[int] = None,
                 depth: Optional[int] = None,
                 num_heads: Optional[int] = None,
                 mlp_ratio: Optional[float] = None,
                 output_dim: Optional[int] = 512,
                 proj_bias: bool = False,
                 pool_type: str = 'cls',
                 class_token: bool = True,
                 ln_pre: Optional[bool] = None,
                 act: str = 'gelu',
                 patch_bias: bool = False,
                 qkv_bias: bool = True,
                 norm_eps: float = 1e-5,
                 layer_scale_init: Optional[float] = None,
                 drop_path_rate: float = 0.,
                 out_indices: Union[int, Sequence[int]] = -1,
                 final_norm: bool = True,
                 frozen_stages: int = -1,
                 with_cp: bool = False,
                 pos_embed_resize: str = 'size',
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 pretrained: Optional[str] = None):
        if pretrained is not None:
            # MMSeg's EncoderDecoder forwards model.pretrained here; the ViT configs set it to a
            # timm checkpoint whose keys match nothing in this tower.
            raise ValueError(
                f'SILCVisionTransformer got pretrained={pretrained!r}: set model.pretrained=None '
                "and load weights with init_cfg=dict(type='Pretrained', checkpoint=..., "
                "prefix='image_encoder.')")
        if init_cfg is None:
            init_cfg = [
                dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
                dict(type='Constant', layer='LayerNorm', val=1., bias=0.),
            ]
        super().__init__(init_cfg=init_cfg)
        settings = resolve_arch(
            arch,
            self.arch_zoo,
            dict(
                width=width,
                depth=depth,
                num_heads=num_heads,
                patch_size=patch_size,
                mlp_ratio=mlp_ratio,
                ln_pre=ln_pre),
            custom_defaults=dict(patch_size=16, mlp_ratio=4.0),
            base=dict(ln_pre=False))
        if pool_type not in POOL_TYPES:
            raise ValueError(f'unknown pool_type {pool_type!r}; choose from {POOL_TYPES}')
        if pool_type == 'cls' and not class_token:
            raise ValueError("pool_type='cls' needs class_token=True")
        if pos_embed_resize not in POS_EMBED_RESIZE_MODES:
            raise ValueError(f'unknown pos_embed_resize {pos_embed_resize!r}; choose from '
                             f'{POS_EMBED_RESIZE_MODES}')
        self.pos_embed_resize = pos_embed_resize

        self.width = width = settings['width']
        self.depth = depth = settings['depth']
        self.num_heads = settings['num_heads']
        self.patch_size = settings['patch_size']
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.grid_size = (self.img_size[0] // self.patch_size, self.img_size[1] // self.patch_size)
        self.pool_type = pool_type
        self.num_prefix_tokens = 1 if class_token else 0
        self.output_dim = output_dim if output_dim else width
        self.final_norm = final_norm
        self.frozen_stages = frozen_stages
        self.with_cp = with_cp
        if not -1 <= frozen_stages <= depth:
            raise ValueError(f'frozen_stages must be in [-1, {depth}], got {frozen_stages}')
        self.out_indices = self._resolve_out_indices(out_indices, depth)

        self.patch_embed = PatchEmbed(
            in_channels=3,
            embed_dims=width,
            conv_type='Conv2d',
            kernel_size=self.patch_size,
            stride=self.patch_size,
            padding='corner',
            bias=patch_bias)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width)) if class_token else None
        num_positions = self.num_prefix_tokens + self.grid_size[0] * self.grid_size[1]
        self.pos_embed = nn.Parameter(torch.zeros(1, num_positions, width))
        self.ln_pre = nn.LayerNorm(width, eps=norm_eps) if settings['ln_pre'] else nn.Identity()
        drop_path_rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList([
            TransformerBlock(
                width,
                self.num_heads,
                mlp_ratio=settings['mlp_ratio'],
                act=act,
                qkv_bias=qkv_bias,
                norm_eps=norm_eps,
                layer_scale_init=layer_scale_init,
                drop_path_rate=rate) for rate in drop_path_rates
        ])
        self.ln_post = nn.LayerNorm(width, eps=norm_eps)
        self.attn_pool = AttentionPoolLatent(
            width, self.num_heads, mlp_ratio=settings['mlp_ratio'], act=act,
            norm_eps=norm_eps) if pool_type == 'map' else None
        self.proj = nn.Linear(width, output_dim, bias=proj_bias) if output_dim else nn.Identity()

        self._init_embeddings()
        self._register_load_state_dict_pre_hook(self._resize_checkpoint_pos_embed)
        self._freeze_stages()

    @staticmethod
    def _resolve_out_indices(out_indices: Union[int, Sequence[int]], depth: int) -> List[int]:
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        resolved = []
        for index in out_indices:
            if not -depth <= index < depth:
                raise ValueError(f'out index {index} is out of range for {depth} blocks')
            resolved.append(index % depth)
        return resolved

    def _init_embeddings(self):
        trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            trunc_normal_(self.cls_token, std=0.02)
        if self.attn_pool is not None:
            trunc_normal_(self.attn_pool.latent, std=self.width**-0.5)

    def init_weights(self):
        # A Pretrained init_cfg loads through silc-seg's checked loader: missing keys and
        # tensors of another shape are errors (MMEngine's PretrainedInit only logs them).
        if not init_weights_checked(self, super().init_weights):
            self._init_embeddings()

    def _resize_checkpoint_pos_embed(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints trained at another resolution load with their grid resized to img_size.
        key = prefix + 'pos_embed'
        if key not in state_dict or state_dict[key].shape == self.pos_embed.shape:
            return
        checkpoint_embed = state_dict[key]
        num_patches = checkpoint_embed.shape[1] - self.num_prefix_tokens
        side = int(num_patches**0.5)
        if side * side != num_patches:
            raise ValueError(f'cannot resize the checkpoint pos_embed of shape '
                             f'{tuple(checkpoint_embed.shape)}: its {num_patches} patch '
                             'positions are not a square grid')
        state_dict[key] = resize_pos_embed(checkpoint_embed, (side, side), self.grid_size,
                                           'bicubic', self.num_prefix_tokens)

    def _freeze_stages(self):
        if self.frozen_stages < 0:
            return
        frozen = [self.patch_embed, self.ln_pre, *self.blocks[:self.frozen_stages]]
        frozen_params = [self.pos_embed] + ([self.cls_token] if self.cls_token is not None else [])
        if self.frozen_stages == self.depth:
            frozen += [self.ln_post, self.proj]
            if self.attn_pool is not None:
                frozen.append(self.attn_pool)
        for module in frozen:
            module.eval()
            frozen_params.extend(module.parameters())
        for param in frozen_params:
            param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        return self

    def embed(self,
              x: Tensor,
              patch_mask: Optional[Tensor] = None,
              mask_token: Optional[Tensor] = None) -> Tuple[Tensor, Tuple[int, int]]:
        """Patch, class-token and positional embeddings (and ``ln_pre``).

        Images whose size is not a multiple of the patch size are zero-padded at the bottom and
        right (as MMSeg's ViT), so that no pixel is dropped; ``h, w = ceil(H / p), ceil(W / p)``.

        Args:
            x (Tensor): ``(B, 3, H, W)`` images.
            patch_mask (Tensor, optional): ``(B, h * w)`` bool, True where a patch is masked:
                its patch embedding is replaced by ``mask_token`` before the positional
                embedding is added (BEiT / iBOT masked image modelling).
            mask_token (Tensor, optional): ``(width,)`` embedding of a masked patch; needed with
                ``patch_mask``.

        Returns:
            tuple: ``(B, num_prefix_tokens + h * w, width)`` tokens and the grid ``(h, w)``.
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f'expected (B, 3, H, W) images, got shape {tuple(x.shape)}')
        x, hw = self.patch_embed(x)
        if patch_mask is not None:
            if mask_token is None:
                raise ValueError('patch_mask needs a mask_token')
            if patch_mask.shape != x.shape[:2]:
                raise ValueError(f'patch_mask must be (B, h * w) = {tuple(x.shape[:2])}, got '
                                 f'{tuple(patch_mask.shape)}')
            x = torch.where(patch_mask.unsqueeze(-1), mask_token.to(x.dtype), x)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)
        return self.ln_pre(x + self.resized_pos_embed(hw).to(x.dtype)), tuple(hw)

    def resized_pos_embed(self, hw: Tuple[int, int]) -> Tensor:
        """The positional embedding for a ``hw`` patch grid (see ``pos_embed_resize``).

        Args:
            hw (tuple[int, int]): the patch grid ``(h, w)``.

        Returns:
            Tensor: ``(1, num_prefix_tokens + h * w, width)``.
        """
        hw = tuple(hw)
        if self.pos_embed_resize == 'size':
            return resize_pos_embed(self.pos_embed, self.grid_size, hw, 'bicubic',
                                    self.num_prefix_tokens)
        old_h, old_w = self.grid_size
        if hw[0] * hw[1] == old_h * old_w and hw[0] == hw[1]:
            return self.pos_embed
        prefix = self.pos_embed[:, :self.num_prefix_tokens]
        grid = self.pos_embed[:, self.num_prefix_tokens:].reshape(1, old_h, old_w, -1)
        grid = F.interpolate(
            grid.permute(0, 3, 1, 2),
            scale_factor=((hw[0] + 0.1) / old_h, (hw[1] + 0.1) / old_w),
            mode='bicubic',
            align_corners=False)
        if tuple(grid.shape[-2:]) != hw:
            raise RuntimeError(f'scale-factor resize gave a {tuple(grid.shape[-2:])} grid for '
                               f'{hw}')
        return torch.cat([prefix, grid.flatten(2).transpose(1, 2)], dim=1)

    def _run_block(self, block: nn.Module, x: Tensor) -> Tensor:
        if self.with_cp and self.training and x.requires_grad:
            return cp.checkpoint(block, x, use_reentrant=False)
        return block(x)

    def _to_map(self, x: Tensor, hw: Tuple[int, int]) -> Tensor:
        patches = x[:, self.num_prefix_tokens:]
        return patches.transpose(1, 2).reshape(x.shape[0], -1, *hw)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """MMSeg backbone forward.

        Args:
            x (Tensor): ``(B, 3, H, W)`` images.

        Returns:
            tuple[Tensor]: ``(B, width, H/p, W/p)`` patch-token maps after the blocks in
            ``out_indices``.
        """
        x, hw = self.embed(x)
        outs = []
        for index, block in enumerate(self.blocks):
            x = self._run_block(block, x)
            if index in self.out_indices:
                out = self.ln_post(x) if self.final_norm and index == self.depth - 1 else x
                outs.append(self._to_map(out, hw))
        return tuple(outs)

    def pool(self, x: Tensor) -> Tensor:
        """``(B, N, width)`` tokens of the last block -> ``(B, output_dim)`` embedding."""
        x = self.ln_post(x)
        if self.pool_type == 'cls':
            pooled = x[:, 0]
        elif self.pool_type == 'gap':
            pooled = x[:, self.num_prefix_tokens:].mean(1)
        else:
            pooled = self.attn_pool(x[:, self.num_prefix_tokens:])
        return self.proj(pooled)

    def encode_image(self, x: Tensor) -> Tensor:
        """Image embeddings in the joint space.

        Args:
            x (Tensor): ``(B, 3, H, W)`` images (any size with at least one patch).

        Returns:
            Tensor: ``(B, output_dim)`` embeddings, not normalized.
        """
        return self.pool(self.forward_tokens(x))

    def forward_tokens(self,
                       x: Tensor,
                       patch_mask: Optional[Tensor] = None,
                       mask_token: Optional[Tensor] = None) -> Tensor:
        """All tokens after the last block (before ``ln_post``): the input of :meth:`pool`
        and, without the prefix tokens, of :meth:`project_patches`.

        Args:
            x (Tensor): ``(B, 3, H, W)`` images.
            patch_mask (Tensor, optional): see :meth:`embed`.
            mask_token (Tensor, optional): see :meth:`embed`.

        Returns:
            Tensor: ``(B, num_prefix_tokens + h * w, width)``.
        """
        x, _ = self.embed(x, patch_mask, mask_token)
        for block in self.blocks:
            x = self._run_block(block, x)
        return x

    def project_patches(self, x: Tensor) -> Tensor:
        """The per-token path of :meth:`pool`: ``(B, N, width)`` patch tokens of the last
        block -> ``(B, N, output_dim)``. ``ln_post`` then, for ``'map'`` pooling, the
        attention pool's per-token path (value and output projections, residual MLP: each
        token pooled as if the probe attended to it alone, as the training-free MaskCLIP of
        Zhou et al. does with CLIP's attention pool), then the projection. For ``'gap'`` the
        mean of the result is exactly the pooled embedding."""
        x = self.ln_post(x)
        if self.attn_pool is not None:
            x = self.attn_pool.forward_dense(x)
        return self.proj(x)

    def encode_dense(self,
                     x: Tensor,
                     variant: str = 'plain',
                     return_intermediates: Sequence[int] = ()) -> Dict[str, object]:
        """Per-patch embeddings in the joint space, for dense prediction.

        The last block runs through
        :func:`~silc_seg.models.layers.dense_attention.last_block_forward` with ``variant``;
        every patch token then goes through :meth:`project_patches`.

        Args:
            x (Tensor): ``(B, 3, H, W)`` images.
            variant (str): last-block variant: ``'plain'`` (the ordinary block), the
                training-free ``'maskclip'``, ``'sclip'``, ``'clearclip'``, ``'naclip'``, or
                ``'catseg'`` (CAT-Seg's value path with the class token's residual, which needs
                a class token).
            return_intermediates (Sequence[int]): block indices (negative from the end) whose
                outputs to return as maps.

        Returns:
            dict: ``dense``: ``(B, output_dim, h, w)`` (not normalized); ``intermediates``:
            list of ``(B, width, h, w)`` maps, in the order requested.
        """
        wanted = self._resolve_out_indices(list(return_intermediates), self.depth)
        x, hw = self.embed(x)
        saved = {}
        for index, block in enumerate(self.blocks):
            if index == self.depth - 1:
                x = last_block_forward(block, x, variant, hw, self.num_prefix_tokens)
            else:
                x = self._run_block(block, x)
            if index in wanted:
                saved[index] = self._to_map(x, hw)
        dense = self.project_patches(x[:, self.num_prefix_tokens:])
        dense = dense.transpose(1, 2).reshape(x.shape[0], -1, *hw)
        return dict(dense=dense, intermediates=[saved[index] for index in wanted])
