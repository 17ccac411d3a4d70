"""ResCLIP (Yang et al., CVPR 2025): residual cross-correlation self-attention (RCS) and
semantic feedback refinement (SFR) on NACLIP's last block.

The equations follow yvhangyang/ResCLIP ``clip/model.py`` (``VisionTransformer.forward``,
``custom_attn`` with ``attn_strategy='resclip'``, ``arch='wo_resi'``, ``create_logit_temp``,
``create_patch_matrix``, ``generate_attention_sfr``, ``check_path``):

- RCS: the q-k attention maps of intermediate blocks (``rcs_layers``), averaged, are mixed into
  the last block's softmax(k k^T / sqrt(d) + Gaussian window) attention:
  ``tau (1 - lambda) A + tau lambda A_rcs``;
- SFR: a first pass of that block gives a segmentation of the window (PAMR-refined, softmax of
  the scaled logits, low-confidence pixels set to query 0); each patch takes its most frequent
  label, and patches of the same label (decayed with distance when the straight path between
  them leaves the label) attend to each other; that map, smoothed along each row and
  normalized, is mixed into the attention logits of the second pass the same way.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from silc_seg.registry import MODELS
from ..utils.pamr import PAMR
from .dense_attention import _layer_scale, _self_similarity, neighbourhood_bias


def straight_path_within_label(labels: Tensor) -> Tuple[Tensor, Tensor]:
    """ResCLIP's ``check_path`` over all patch pairs of a ``(h, w)`` label grid.

    Every pair is sampled at ``t = k / max_steps`` for ``k = 0 .. steps`` (``steps`` the pair's
    Chebyshev distance, ``max_steps`` the largest of the grid), rounded to patches.

    Returns:
        tuple[Tensor, Tensor]: ``(N, N)`` bool, True where every sampled patch has the first
        patch's label, and the ``(N, N)`` Chebyshev distances.
    """
    h, w = labels.shape
    index = torch.arange(h * w, device=labels.device)
    coords = torch.stack([index // w, index % w], dim=-1)  # (N, 2)
    start = coords[:, None].expand(-1, h * w, -1).reshape(-1, 2)
    end = coords[None].expand(h * w, -1, -1).reshape(-1, 2)
    steps = (end - start).abs().amax(dim=-1)
    max_steps = int(steps.max())
    t = torch.linspace(0, 1, max_steps + 1, device=labels.device)[None, :, None]
    points = (start[:, None] * (1 - t) + end[:, None] * t).round().long()
    sampled = torch.arange(max_steps + 1, device=labels.device)[None] <= steps[:, None]
    flat = labels.flatten()
    same = flat[points[..., 0] * w + points[..., 1]] == flat[start[:, 0] * w + start[:, 1], None]
    valid = (same | ~sampled).all(dim=1)
    return valid.view(h * w, h * w), steps.view(h * w, h * w)


def semantic_feedback_attention(labels: Tensor,
                                std: float,
                                delete_same_entity: bool = True) -> Tensor:
    """ResCLIP's ``generate_attention_sfr`` for one ``(h, w)`` grid of patch labels, without
    the class token's (zero) row and column.

    Returns:
        Tensor: ``(N, N)`` affinities, each row non-negative and summing to 1 (or 0).
    """
    flat = labels.flatten()
    affinity = (flat[:, None] == flat[None]).float()
    if delete_same_entity and flat.numel() > 1:
        valid, steps = straight_path_within_label(labels)
        decay = torch.exp(-steps / steps.max())
        affinity = torch.where(valid, affinity, affinity * decay)
    size = min(flat.numel(), int(6 * std + 1))
    size = size if size % 2 == 1 else size + 1
    offsets = torch.arange(size, device=labels.device) - size // 2
    kernel = torch.exp(-offsets.float()**2 / (2 * std**2))
    kernel = kernel / kernel.sum()
    blurred = F.conv1d(affinity[:, None], kernel.view(1, 1, -1), padding=size // 2)[:, 0]
    blurred = blurred.relu()
    return blurred / (blurred.sum(dim=1, keepdim=True) + 1e-8)


def majority_patch_labels(pixel_labels: Tensor, patch_size: int) -> Tensor:
    """``(B, H, W)`` pixel labels -> ``(B, H // p, W // p)`` most frequent label of each patch
    (``torch.mode``, as ``create_patch_matrix``)."""
    patches = pixel_labels.unfold(1, patch_size, patch_size).unfold(2, patch_size, patch_size)
    return patches.flatten(3).mode(dim=-1).values


@MODELS.register_module()
class ResCLIPDense(nn.Module):
    """ResCLIP's dense forward of a ViT image tower (see the module docstring).

    Defaults are ResCLIP's for ViT-B/16 (``configs/base_config.py``, ``resclip_segmentor.py``,
    ``test_all.sh wo_resi resclip 5``); per dataset the presets set ``temp_thd`` and the
    weights (``configs/cfg_*.py``).

    Args:
        rcs_layers (tuple[int, int]): blocks ``[start, end)`` whose q-k attention RCS averages
            ((5, 9): blocks 6-9 of 12).
        rcs_weights (tuple[float, float]): ``(tau, lambda)`` of RCS.
        sfr_weights (tuple[float, float]): ``(tau, lambda)`` of SFR.
        temp_thd (float): pixels whose first-pass probability is below it get query 0.
        gaussian_std (float): the neighbourhood window's and the SFR row smoothing's std (5).
        logit_scale (float): scale of the first-pass cosine logits before the softmax (the
            preset's head scale, 40).
        delete_same_entity (bool): decay the affinity of same-label patches that the straight
            path between them leaves (True in every ResCLIP config).
        pamr (dict, optional): PAMR of the first-pass logits (ResCLIP: 10 iterations, dilations
            8 and 16); None disables it.
        use_rcs (bool): apply RCS.
        use_sfr (bool): apply SFR (then ``text_embeddings`` are needed).
    """

    def __init__(self,
                 rcs_layers: Tuple[int, int] = (5, 9),
                 rcs_weights: Sequence[float] = (2.0, 0.3),
                 sfr_weights: Sequence[float] = (2.1, 0.7),
                 temp_thd: float = 0.25,
                 gaussian_std: float = 5.0,
                 logit_scale: float = 40.0,
                 delete_same_entity: bool = True,
                 pamr: Optional[dict] = dict(num_iter=10, dilations=(8, 16)),
                 use_rcs: bool = True,
                 use_sfr: bool = True):
        super().__init__()
        if not 0 <= rcs_layers[0] < rcs_layers[1]:
            raise ValueError(f'rcs_layers must be [start, end) with 0 <= start < end, got '
                             f'{rcs_layers}')
        if gaussian_std <= 0:
            raise ValueError(f'gaussian_std must be positive, got {gaussian_std}')
        self.rcs_layers = tuple(rcs_layers)
        self.rcs_weights = tuple(rcs_weights)
        self.sfr_weights = tuple(sfr_weights)
        self.temp_thd = temp_thd
        self.gaussian_std = gaussian_std
        self.logit_scale = logit_scale
        self.delete_same_entity = delete_same_entity
        self.pamr = PAMR(**pamr) if pamr is not None else None
        self.use_rcs = use_rcs
        self.use_sfr = use_sfr

    def _last_attention(self, block: nn.Module, x: Tensor, bias: Tensor, rcs: Optional[Tensor],
                        sfr: Optional[Tensor]) -> Tensor:
        """The reduced last block (no residual, no FFN) with RCS / SFR mixed in."""
        _, k, v = block.attn.split_qkv(block.ln_1(x))
        logits = _self_similarity(k)
        if sfr is not None:
            tau, lam = self.sfr_weights
            logits = tau * ((1 - lam) * logits + lam * sfr.unsqueeze(1).to(logits.dtype))
        attention = (logits + bias).softmax(dim=-1)
        if rcs is not None:
            tau, lam = self.rcs_weights
            attention = tau * ((1 - lam) * attention + lam * rcs.to(attention.dtype))
        return _layer_scale(block, 'ls_1', block.attn.merge_heads(attention @ v))

    def _to_maps(self, tower: nn.Module, x: Tensor, hw: Tuple[int, int]) -> Tensor:
        dense = tower.project_patches(x[:, tower.num_prefix_tokens:])
        return dense.transpose(1, 2).reshape(x.shape[0], -1, *hw)

    def _feedback(self, tower: nn.Module, images: Tensor, first_pass: Tensor,
                  text_embeddings: Tensor, hw: Tuple[int, int]) -> Tensor:
        """``(B, N, N)`` SFR attention (normalized by its maximum) from the first pass."""
        dense = F.normalize(self._to_maps(tower, first_pass, hw), dim=1)
        logits = torch.einsum('bchw,qc->bqhw', dense, text_embeddings.to(dense.dtype))
        logits = F.interpolate(
            logits, size=images.shape[-2:], mode='bilinear', align_corners=False)
        if self.pamr is not None:
            logits = self.pamr(images.to(logits.dtype), logits)
        probabilities = (logits * self.logit_scale).softmax(dim=1)
        confidence, labels = probabilities.max(dim=1)
        labels = labels.masked_fill(confidence < self.temp_thd, 0)
        patch_labels = majority_patch_labels(labels, tower.patch_size)
        prefix = tower.num_prefix_tokens
        maps = []
        for grid in patch_labels:
            sfr = semantic_feedback_attention(grid, self.gaussian_std, self.delete_same_entity)
            sfr = F.pad(sfr, (prefix, 0, prefix, 0))
            maps.append(sfr / sfr.max())
        return torch.stack(maps)

    def forward(self,
                tower: nn.Module,
                images: Tensor,
                text_embeddings: Optional[Tensor] = None) -> Tensor:
        """``(B, 3, H, W)`` images (normalized; whole patches) and ``(Q, C)`` normalized query
        embeddings -> ``(B, C, h, w)`` projected patch embeddings."""
        if self.rcs_layers[1] > tower.depth - 1:
            raise ValueError(f'rcs_layers {self.rcs_layers} must end by block '
                             f'{tower.depth - 1} of a {tower.depth}-block tower')
        if self.use_sfr and text_embeddings is None:
            raise ValueError('ResCLIP semantic feedback needs the query text embeddings')
        x, hw = tower.embed(images)
        if tuple(images.shape[-2:]) != (hw[0] * tower.patch_size, hw[1] * tower.patch_size):
            raise ValueError(f'ResCLIP needs whole patches, got a {tuple(images.shape[-2:])} '
                             "input: use test_cfg.partial_patches='drop'")
        rcs_maps = []
        for index, block in enumerate(tower.blocks[:-1]):
            if self.use_rcs and self.rcs_layers[0] <= index < self.rcs_layers[1]:
                q, k, _ = block.attn.split_qkv(block.ln_1(x))
                rcs_maps.append((q @ k.transpose(-2, -1) * q.shape[-1]**-0.5).softmax(dim=-1))
            x = block(x)
        rcs = torch.stack(rcs_maps).mean(dim=0) if rcs_maps else None
        last = tower.blocks[-1]
        bias = neighbourhood_bias(
            hw, tower.num_prefix_tokens, self.gaussian_std, device=x.device, dtype=x.dtype)
        sfr = None
        if self.use_sfr:
            first_pass = self._last_attention(last, x, bias, rcs, None)
            sfr = self._feedback(tower, images, first_pass, text_embeddings, hw)
        return self._to_maps(tower, self._last_attention(last, x, bias, rcs, sfr), hw)
