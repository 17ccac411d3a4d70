"""CASS (Kim et al., CVPR 2025): spectral object-level context distillation from a vision
foundation model (VFM) into CLIP's last attention.

The equations follow MICV-yonsei/CASS ``clip/model.py`` (``VisionTransformer.forward``,
``custom_attn``, ``_apply_spectral_strategy``) and ``cass_segmentor.py`` (``forward_feature``),
for one window:

1. the window, CLIP-normalized, is mapped back to pixels with the reference's inverse
   normalization (ImageNet mean, std ``(0.229, 0.224, 0.255)``), truncated to 8 bits, resized to
   a square of its shorter side when it is not square, normalized for the VFM; the keys ``K_v``
   of the VFM's last attention (patch tokens, per head) are resized bilinearly to the CLIP grid
   and rescaled to the value range of CLIP's last keys ``K`` (min / max over the window);
2. per head, the graphs ``C = K K^T / sqrt(d)`` and ``D = K_v K_v^T / sqrt(d)``; their largest
   ``num_eigenvalues`` eigenvalues, L2- then L1-normalized, give the spectral distance
   ``W_ij = sum |sort(eig D_i) - sort(eig C_j)|`` and the head assignment that minimizes
   ``sum (1 - W)`` (Hungarian); CLIP head ``i`` takes the VFM head ``j`` assigned to row ``i``,
   with the weight ``w = W_ij`` (the code indexes the assignment this way);
3. ``D_j`` is replaced by its rank-``low_rank`` approximation ``U diag(s') V^T`` (singular values
   rescaled from ``[s_min, s_max]`` to ``[s_min / 2, 3 s_max / 2]`` unless disabled), its diagonal
   zeroed, rescaled to the range of ``C_i``; the attention is
   ``softmax((w a D'_j + C_i) / (w a + 1) + G)`` with ``a = distill_weight`` and ``G`` NACLIP's
   Gaussian neighbourhood bias;
4. the output is ``out_proj(A v)`` of the patch values: no residual, no FFN, no class token; then
   ``ln_post`` and the projection.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from silc_seg.registry import MODELS
from .dense_attention import _layer_scale, _self_similarity, neighbourhood_bias

LOW_RANK_SOLVERS = ('randomized', 'exact')
VFM_KEY_DTYPES = {'fp16': torch.float16, 'fp32': None}


def graph_spectrum(graphs: Tensor, num_eigenvalues: int) -> Tensor:
    """``(H, N, N)`` symmetric graphs -> ``(H, E)`` their largest eigenvalues (float64,
    descending)."""
    return torch.linalg.eigvalsh(graphs.double()).flip(-1)[..., :num_eigenvalues]


def spectral_distances(vfm_graphs: Tensor, clip_graphs: Tensor, num_eigenvalues: int) -> Tensor:
    """``(H_v, H_c)`` distances between the normalized spectra of every VFM and CLIP head: the
    L1 distance of the sorted eigenvalues, each spectrum L2- then L1-normalized."""
    spectra = []
    for graphs in (vfm_graphs, clip_graphs):
        values = F.normalize(graph_spectrum(graphs, num_eigenvalues), p=2, dim=1)
        spectra.append(F.normalize(values, p=1, dim=-1).sort(dim=-1)[0])
    return (spectra[0][:, None] - spectra[1][None]).abs().sum(dim=-1)


def match_range(source: Tensor, target: Tensor) -> Tensor:
    """``source`` rescaled linearly so that its min / max are those of ``target``."""
    source_min, source_max = source.min(), source.max()
    target_min, target_max = target.min(), target.max()
    return (source - source_min) / (source_max - source_min) * (target_max -
                                                                target_min) + target_min


def low_rank_graph(graph: Tensor, rank: int, solver: str, rescale: bool) -> Tensor:
    """CASS's low-rank VFM graph: rank-``rank`` SVD (float64), singular values rescaled to
    ``[s_min / 2, 3 s_max / 2]`` if ``rescale``, diagonal zeroed.

    Args:
        graph (Tensor): ``(N, N)`` graph.
        rank (int): components kept (at most ``N``).
        solver (str): ``'randomized'`` (``torch.svd_lowrank``, 2 power iterations, as the
            reference; it draws from the global RNG) or ``'exact'`` (full SVD, truncated).
        rescale (bool): rescale the singular values.

    Returns:
        Tensor: ``(N, N)`` float64.
    """
    graph = graph.double()
    rank = min(rank, min(graph.shape))
    if solver == 'randomized':
        u, s, v = torch.svd_lowrank(graph, q=rank)
    else:
        u, s, vh = torch.linalg.svd(graph)
        u, s, v = u[:, :rank], s[:rank], vh[:rank].T
    if rescale:
        s_min, s_max = s.min(), s.max()
        scaled_range = (1.5 * s_max) - (0.5 * s_min)
        s = (s - s_min) / (s_max - s_min) * scaled_range + (0.5 * s_min)
    approx = u @ torch.diag(s) @ v.T
    return approx.fill_diagonal_(0)


def spectral_attention_logits(clip_graphs: Tensor,
                              vfm_graphs: Tensor,
                              num_eigenvalues: int = 20,
                              low_rank: int = 10,
                              distill_weight: float = 10.0,
                              solver: str = 'randomized',
                              rescale_singular_values: bool = True) -> Tensor:
    """CASS's distilled attention logits of one window (steps 2-3, before the bias).

    Args:
        clip_graphs (Tensor): ``(H, N, N)`` CLIP key graphs ``K K^T / sqrt(d)``.
        vfm_graphs (Tensor): ``(H, N, N)`` VFM key graphs on the CLIP grid.

    Returns:
        Tensor: ``(H, N, N)`` logits in the dtype of ``clip_graphs``.
    """
    cost = (1 - spectral_distances(vfm_graphs, clip_graphs, num_eigenvalues)).float()
    rows, cols = linear_sum_assignment(cost.cpu().numpy())
    combined = torch.zeros_like(clip_graphs)
    for index in range(clip_graphs.shape[0]):
        i, j = int(rows[index]), int(cols[index])
        weight = 1 - cost[i, j].to(clip_graphs.device)
        approx = low_rank_graph(vfm_graphs[j], low_rank, solver, rescale_singular_values)
        approx = match_range(approx, clip_graphs[i])
        combined[index] = (weight * distill_weight * approx + clip_graphs[i]) / (
            weight * distill_weight + 1)
    return combined


@MODELS.register_module()
class CASSDense(nn.Module):
    """CASS's dense forward of a ViT image tower (see the module docstring).

    Defaults are CASS's (``cass_segmentor.py``, ``clip/model.py``: DINO ViT-B/8, Gaussian std 5,
    20 eigenvalues, rank 10, distillation weight 10, singular values rescaled).

    Args:
        vfm (dict): the VFM tower config, e.g. ``dict(type='DINOViT',
            arch='vit_base_patch8_224.dino')``, with ``forward_last_qkv``; its heads and head
            width must be CLIP's.
        num_eigenvalues (int): eigenvalues compared per head.
        low_rank (int): rank of the VFM graph approximation (the reference's ``svd_lowrank``
            always keeps its first ``q=10`` components).
        low_rank_solver (str): ``'randomized'`` (the reference's ``torch.svd_lowrank``) or
            ``'exact'``.
        distill_weight (float): the reference's ``scale_factor``.
        rescale_singular_values (bool): rescale the kept singular values (the reference does
            except on VOC-20 and Cityscapes).
        gaussian_std (float): std (in patches) of the neighbourhood bias.
        vfm_key_dtype (str): ``'fp16'`` (the reference casts the VFM's qkv to fp16 and resizes
            them and computes their graph in fp16) or ``'fp32'`` (the working dtype).
        inverse_mean (Sequence[float]): the reference's inverse normalization of the window
            (0-1 units): ``pixels = 255 (x * inverse_std + inverse_mean)``, truncated to 8 bits.
        inverse_std (Sequence[float]): its std.
        vfm_mean (Sequence[float]): the VFM's normalization of ``pixels / 255``.
        vfm_std (Sequence[float]): its std.
        square_vfm_input (bool): resize a non-square window to a square of its shorter side
            (bicubic, antialiased, 8 bits) before the VFM, as the reference's PIL resize does.
    """

    def __init__(self,
                 vfm: dict,
                 num_eigenvalues: int = 20,
                 low_rank: int = 10,
                 low_rank_solver: str = 'randomized',
                 distill_weight: float = 10.0,
                 rescale_singular_values: bool = True,
                 gaussian_std: float = 5.0,
                 vfm_key_dtype: str = 'fp16',
                 inverse_mean: Sequence[float] = (0.485, 0.456, 0.406),
                 inverse_std: Sequence[float] = (0.229, 0.224, 0.255),
                 vfm_mean: Sequence[float] = (0.485, 0.456, 0.406),
                 vfm_std: Sequence[float] = (0.229, 0.224, 0.225),
                 square_vfm_input: bool = True):
        super().__init__()
        if low_rank_solver not in LOW_RANK_SOLVERS:
            raise ValueError(f'unknown low_rank_solver {low_rank_solver!r}; choose from '
                             f'{LOW_RANK_SOLVERS}')
        if vfm_key_dtype not in VFM_KEY_DTYPES:
            raise ValueError(f'unknown vfm_key_dtype {vfm_key_dtype!r}; choose from '
                             f'{tuple(VFM_KEY_DTYPES)}')
        if num_eigenvalues < 1 or low_rank < 1:
            raise ValueError(f'num_eigenvalues and low_rank must be >= 1, got '
                             f'{num_eigenvalues} and {low_rank}')
        if gaussian_std <= 0:
            raise ValueError(f'gaussian_std must be positive, got {gaussian_std}')
        self.vfm = MODELS.build(vfm)
        self.num_eigenvalues = num_eigenvalues
        self.low_rank = low_rank
        self.low_rank_solver = low_rank_solver
        self.distill_weight = distill_weight
        self.rescale_singular_values = rescale_singular_values
        self.gaussian_std = gaussian_std
        self.vfm_key_dtype = vfm_key_dtype
        self.square_vfm_input = square_vfm_input
        # The reference's inverse normalization is torchvision's Normalize(-m / s, 1 / s).
        inverse_mean, inverse_std = self._channels('inverse_mean', inverse_mean), \
            self._channels('inverse_std', inverse_std)
        for name, value in (('inverse_shift', [-m / s for m, s in zip(inverse_mean, inverse_std)
                                               ]), ('inverse_scale', [1 / s for s in inverse_std]),
                            ('vfm_mean', self._channels('vfm_mean', vfm_mean)),
                            ('vfm_std', self._channels('vfm_std', vfm_std))):
            self.register_buffer(
                name, torch.tensor(value, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    @staticmethod
    def _channels(name: str, value: Sequence[float]) -> list:
        if len(value) != 3:
            raise ValueError(f'{name} needs 3 channels, got {value}')
        return [float(v) for v in value]

    def vfm_inputs(self, images: Tensor) -> Tensor:
        """CLIP-normalized windows -> the reference's VFM input (see the module docstring)."""
        images = images.float()
        pixels = ((images - self.inverse_shift) / self.inverse_scale * 255).clamp(0, 255).floor()
        height, width = pixels.shape[-2:]
        if self.square_vfm_input and height != width:
            side = min(height, width)
            pixels = F.interpolate(
                pixels, size=(side, side), mode='bicubic', align_corners=False,
                antialias=True).round().clamp(0, 255)
        return (pixels / 255 - self.vfm_mean) / self.vfm_std

    def vfm_keys(self, images: Tensor, grid: Tuple[int, int], dtype: torch.dtype) -> Tensor:
        """``(B, heads, h * w, head_dim)`` keys of the VFM's last attention on the CLIP grid."""
        _, keys, _, vfm_grid = self.vfm.forward_last_qkv(self.vfm_inputs(images))
        keys = keys[:, :, self.vfm.num_prefix_tokens:]
        batch, heads, _, head_dim = keys.shape
        key_dtype = VFM_KEY_DTYPES[self.vfm_key_dtype] or dtype
        keys = keys.to(key_dtype).transpose(-2, -1).reshape(batch * heads, head_dim, *vfm_grid)
        keys = F.interpolate(keys, size=grid, mode='bilinear', align_corners=False)
        return keys.reshape(batch, heads, head_dim, -1).transpose(-2, -1)

    def forward_with_global(self, tower: nn.Module, images: Tensor) -> Tuple[Tensor, Tensor]:
        """``(B, 3, H, W)`` CLIP-normalized windows -> ``(B, C, H / p, W / p)`` projected patch
        embeddings and ``(B, C)`` the windows' class-token embeddings (ordinary last block),
        neither normalized."""
        patch = tower.patch_size
        height, width = images.shape[-2:]
        if height < patch or width < patch:
            raise ValueError(f'a {height}x{width} window holds no whole {patch}px CLIP patch')
        # The CLIP patch convolution leaves out rows / columns that do not fill a patch; the
        # VFM sees the whole window.
        x, hw = tower.embed(images[..., :height - height % patch, :width - width % patch])
        for block in tower.blocks[:-1]:
            x = block(x)
        last = tower.blocks[-1]
        global_embeddings = tower.pool(last(x))
        _, k, v = last.attn.split_qkv(last.ln_1(x))
        prefix = tower.num_prefix_tokens
        k, v = k[:, :, prefix:], v[:, :, prefix:]
        vfm_keys = self.vfm_keys(images, hw, k.dtype)
        if vfm_keys.shape[1:] != k.shape[1:]:
            raise ValueError(f'VFM keys {tuple(vfm_keys.shape[1:])} (heads, patches, head '
                             f'width) do not match CLIP keys {tuple(k.shape[1:])}')
        bias = neighbourhood_bias(hw, 0, self.gaussian_std, device=k.device, dtype=k.dtype)
        logits = []
        for window_k, window_vfm in zip(k, vfm_keys):
            window_vfm = match_range(window_vfm, window_k)
            vfm_graphs = (window_vfm @ window_vfm.transpose(-2, -1)) * window_k.shape[-1]**-0.5
            logits.append(
                spectral_attention_logits(
                    _self_similarity(window_k),
                    vfm_graphs,
                    num_eigenvalues=self.num_eigenvalues,
                    low_rank=self.low_rank,
                    distill_weight=self.distill_weight,
                    solver=self.low_rank_solver,
                    rescale_singular_values=self.rescale_singular_values))
        attention = (torch.stack(logits) + bias).softmax(dim=-1)
        out = last.attn.merge_heads(attention @ v)
        dense = tower.project_patches(_layer_scale(last, 'ls_1', out))
        return dense.transpose(1, 2).reshape(dense.shape[0], -1, *hw), global_embeddings

    def forward(self,
                tower: nn.Module,
                images: Tensor,
                text_embeddings: Optional[Tensor] = None) -> Tensor:
        """``(B, 3, H, W)`` CLIP-normalized windows -> ``(B, C, H / p, W / p)`` projected patch
        embeddings (``text_embeddings`` is unused)."""
        return self.forward_with_global(tower, images)[0]
