"""Last-block forward of the image tower for dense (per-patch) prediction.

``SILCVisionTransformer.encode_dense`` runs its last transformer block through
:func:`last_block_forward`, so training-free dense variants that modify the last block's attention
(MaskCLIP of Zhou et al., SCLIP, ClearCLIP, NACLIP) plug in here without touching the tower.
CAT-Seg's dense path (``'catseg'``) replaces the last block the same way.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DENSE_VARIANTS = ('plain', 'maskclip', 'sclip', 'clearclip', 'clearclip_vanilla', 'naclip',
                  'catseg')


def _layer_scale(block: nn.Module, name: str, x: Tensor) -> Tensor:
    # LayerScale is optional (nn.Identity or absent in towers without it).
    scale = getattr(block, name, None)
    return x if scale is None else scale(x)


def _self_similarity(x: Tensor) -> Tensor:
    """Scaled dot products of a projection with itself (q-q or k-k), (B, heads, N, N)."""
    return (x @ x.transpose(-2, -1)) * x.shape[-1]**-0.5


def neighbourhood_bias(hw: Tuple[int, int],
                       num_prefix_tokens: int,
                       std: float,
                       device=None,
                       dtype=None) -> Tensor:
    """NACLIP's neighbourhood attention bias: a Gaussian of the grid distance between two patches
    (peak 1 at the patch itself), added to the patch-to-patch attention logits; prefix tokens
    get no bias.

    Args:
        hw (tuple[int, int]): patch grid (h, w).
        num_prefix_tokens (int): class/register tokens before the patches.
        std (float): Gaussian standard deviation in patches.

    Returns:
        Tensor: (N, N) bias with N = num_prefix_tokens + h * w.
    """
    rows, cols = torch.meshgrid(
        torch.arange(hw[0], device=device, dtype=torch.float32),
        torch.arange(hw[1], device=device, dtype=torch.float32),
        indexing='ij')
    coords = torch.stack([rows.flatten(), cols.flatten()], dim=1)
    squared_distance = torch.cdist(coords, coords).square()
    gaussian = torch.exp(-squared_distance / (2 * std**2))
    return F.pad(gaussian, (num_prefix_tokens, 0, num_prefix_tokens, 0)).to(dtype)


def maskclip_block_forward(block: nn.Module, x: Tensor) -> Tensor:
    """MaskCLIP (Zhou et al., ECCV 2022): the last attention is replaced by its value path
    (value -> output projection, no query-key mixing); residual and FFN are kept as in the
    reference (``TransformerEncoderLayer.forward(return_qkv=True)`` of chongzhou96/MaskCLIP
    ``mmseg/models/backbones/vit.py``), so every output token depends on its own input only."""
    _, _, v = block.attn.split_qkv(block.ln_1(x))
    x = x + _layer_scale(block, 'ls_1', block.attn.merge_heads(v))
    return x + _layer_scale(block, 'ls_2', block.mlp(block.ln_2(x)))


def sclip_block_forward(block: nn.Module, x: Tensor) -> Tensor:
    """SCLIP (Wang et al., ECCV 2024): correlative self-attention softmax(qq^T) + softmax(kk^T)
    in place of the last attention; the residual and the FFN are kept, as in SCLIP's
    ``VisionTransformer.forward`` (wangf3014/SCLIP ``clip/model.py``)."""
    q, k, v = block.attn.split_qkv(block.ln_1(x))
    attention = _self_similarity(q).softmax(dim=-1) + _self_similarity(k).softmax(dim=-1)
    x = x + _layer_scale(block, 'ls_1', block.attn.merge_heads(attention @ v))
    return x + _layer_scale(block, 'ls_2', block.mlp(block.ln_2(x)))


def clearclip_block_forward(block: nn.Module, x: Tensor) -> Tensor:
    """ClearCLIP (Lan et al., ECCV 2024): q-q self-attention; no residual, no FFN: the output
    is the projected attention output alone (mc-lan/ClearCLIP ``open_clip/transformer.py``,
    ``ignore_residual=True``). LayerScale, absent in CLIP, is applied for towers that have it."""
    q, _, v = block.attn.split_qkv(block.ln_1(x))
    attention = _self_similarity(q).softmax(dim=-1)
    return _layer_scale(block, 'ls_1', block.attn.merge_heads(attention @ v))


def clearclip_vanilla_block_forward(block: nn.Module, x: Tensor) -> Tensor:
    """ClearCLIP as its repository ships it (``configs/base_config.py``: ``model_type='vanilla'``,
    ``ignore_residual=True``): the block's own q-k attention, no residual, no FFN."""
    return _layer_scale(block, 'ls_1', block.attn(block.ln_1(x)))


def naclip_block_forward(block: nn.Module,
                         x: Tensor,
                         hw: Tuple[int, int],
                         num_prefix_tokens: int,
                         std: float = 5.0) -> Tensor:
    """NACLIP (Hajimiri et al., WACV 2025): k-k attention plus a Gaussian neighbourhood bias on
    the patch grid; reduced block (no residual, no FFN), as ``arch='reduced'``,
    ``attn_strategy='naclip'`` in sinahmr/NACLIP ``clip/model.py``."""
    _, k, v = block.attn.split_qkv(block.ln_1(x))
    bias = neighbourhood_bias(hw, num_prefix_tokens, std, device=x.device, dtype=k.dtype)
    attention = (_self_similarity(k) + bias).softmax(dim=-1)
    return _layer_scale(block, 'ls_1', block.attn.merge_heads(attention @ v))


def catseg_block_forward(block: nn.Module, x: Tensor, num_prefix_tokens: int) -> Tensor:
    """CAT-Seg's dense last block (``ResidualAttentionBlock.forward_dense`` of
    cvlab-kaist/CAT-Seg ``cat_seg/third_party/model_vpt.py``): every token's value projection of
    ``ln_1(x)`` goes through the output projection (no query-key attention); the residual added
    to every token is the class token's block input ``x[:, :1]``, not the token's own input;
    then the FFN with its residual: ``v + mlp(ln_2(v))``.

    Args:
        block (nn.Module): the last :class:`~silc_seg.models.layers.transformer.TransformerBlock`.
        x (Tensor): ``(B, N, D)`` tokens, the class token first.
        num_prefix_tokens (int): prefix tokens of the tower; at least 1 (the class token).

    Returns:
        Tensor: ``(B, N, D)`` tokens.
    """
    if num_prefix_tokens < 1:
        raise ValueError("dense variant 'catseg' adds the class token's input to every token; "
                         'this tower has no class token (class_token=False)')
    _, _, v = block.attn.split_qkv(block.ln_1(x))
    v = x[:, :1] + _layer_scale(block, 'ls_1', block.attn.merge_heads(v))
    return v + _layer_scale(block, 'ls_2', block.mlp(block.ln_2(v)))


def last_block_forward(block: nn.Module, x: Tensor, variant: str, hw: Tuple[int, int],
                       num_prefix_tokens: int) -> Tensor:
    """Run the last transformer block on ``(B, N, D)`` tokens.

    Args:
        block (nn.Module): a :class:`~silc_seg.models.layers.transformer.TransformerBlock`.
        x (Tensor): ``(B, num_prefix_tokens + h * w, D)`` tokens, prefix tokens first.
        variant (str): ``'plain'``: the ordinary block; ``'maskclip'``, ``'sclip'``,
            ``'clearclip'`` (q-q), ``'clearclip_vanilla'`` (q-k), ``'naclip'``: the
            training-free dense variants above;
            ``'catseg'``: CAT-Seg's dense path (:func:`catseg_block_forward`).
        hw (tuple[int, int]): the patch grid ``(h, w)``.
        num_prefix_tokens (int): number of prefix (class) tokens.

    Returns:
        Tensor: ``(B, N, D)`` tokens.
    """
    if variant not in DENSE_VARIANTS:
        raise ValueError(f'unknown dense variant {variant!r}; choose from {DENSE_VARIANTS}')
    if x.shape[1] != num_prefix_tokens + hw[0] * hw[1]:
        raise ValueError(f'{x.shape[1]} tokens do not match {num_prefix_tokens} prefix tokens '
                         f'and a {hw[0]}x{hw[1]} patch grid')
    if variant == 'plain':
        return block(x)
    if variant == 'maskclip':
        return maskclip_block_forward(block, x)
    if variant == 'sclip':
        return sclip_block_forward(block, x)
    if variant == 'clearclip':
        return clearclip_block_forward(block, x)
    if variant == 'clearclip_vanilla':
        return clearclip_vanilla_block_forward(block, x)
    if variant == 'catseg':
        return catseg_block_forward(block, x, num_prefix_tokens)
    return naclip_block_forward(block, x, hw, num_prefix_tokens)
