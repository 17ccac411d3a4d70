"""SC-CLIP (Bai et al., "Self-Calibrated CLIP for Training-Free Open-Vocabulary Segmentation"):
dense features from the whole image tower, not only its last block.

The equations follow SuleBai/SC-CLIP ``clip/model.py`` (``VisionTransformer.forward``,
``lof_pytorch``, ``mean_interpolation``, ``custom_attn``, ``adaptively_aggregate``):

1. anomaly tokens of the penultimate block's patches (local outlier factor) are replaced by the
   mean of their non-anomalous 3x3 neighbours;
2. the patch-patch cosine similarity of an intermediate block (``pre_adjust_index``, anomalies
   filled the same way) aggregates the tokens before the last attention and, shifted by its mean,
   is averaged with the k-k attention;
3. the similarity of an earlier block (``post_adjust_index``) aggregates the output;
4. the sum of the blocks ``fusion_range`` goes through the same last attention and is added.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from silc_seg.registry import MODELS
from .dense_attention import _layer_scale


def local_outlier_factor(x: Tensor,
                         num_neighbours: int = 30,
                         contamination: float = 0.05) -> Tuple[Tensor, Tensor]:
    """SC-CLIP's local outlier factor of ``(B, N, D)`` tokens over squared Euclidean distances.

    As in ``lof_pytorch``, the reach distance of a token to each neighbour is the larger of
    their distance and the token's own k-distance.

    Returns:
        tuple[Tensor, Tensor]: ``(B, N)`` bool outliers (LOF above the ``1 - contamination``
        quantile of the image) and the ``(B, N)`` LOF scores.
    """
    if x.shape[1] <= num_neighbours:
        raise ValueError(f'local outlier factor needs more than {num_neighbours} tokens, got '
                         f'{x.shape[1]}')
    x = x.float()
    distances = torch.cdist(x, x, compute_mode='donot_use_mm_for_euclid_dist').square()
    knn_distances, knn_indices = distances.topk(num_neighbours + 1, dim=-1, largest=False)
    knn_distances, knn_indices = knn_distances[..., 1:], knn_indices[..., 1:]
    k_distance = knn_distances[..., -1:]
    reach = torch.maximum(knn_distances, k_distance.expand_as(knn_distances))
    density = num_neighbours / torch.nan_to_num(reach.mean(dim=-1), nan=1e-6)  # (B, N)
    neighbour_density = torch.gather(density, 1, knn_indices.flatten(1)).view_as(knn_indices)
    scores = (neighbour_density / density.unsqueeze(-1)).mean(dim=-1)
    threshold = torch.quantile(scores, 1 - contamination, dim=-1, keepdim=True)
    return scores > threshold, scores


def fill_from_neighbours(maps: Tensor, outliers: Tensor) -> Tensor:
    """Replace the outlier positions of ``(B, C, h, w)`` maps by the mean of their 3x3
    neighbours that are not outliers (zero padding; left as they are without such a neighbour).

    Args:
        maps (Tensor): ``(B, C, h, w)`` features.
        outliers (Tensor): ``(B, h, w)`` bool.
    """
    keep = (~outliers).to(maps.dtype).unsqueeze(1)  # (B, 1, h, w)
    kernel = torch.ones(1, 1, 3, 3, dtype=maps.dtype, device=maps.device)
    kernel[..., 1, 1] = 0
    channels = maps.shape[1]
    neighbour_sum = F.conv2d(
        maps * keep, kernel.expand(channels, 1, 3, 3), padding=1, groups=channels)
    neighbour_count = F.conv2d(keep, kernel, padding=1)
    update = outliers.unsqueeze(1) & (neighbour_count > 0)
    return torch.where(update, neighbour_sum / neighbour_count.clamp(min=1), maps)


def aggregate(tokens: Tensor, affinity: Tensor) -> Tensor:
    """``(B, N, D)`` tokens averaged with the rows of a non-negative ``(B, N, N)`` affinity."""
    return (affinity / (affinity.sum(dim=-1, keepdim=True) + 1e-6)) @ tokens


def similarity_attention(block: nn.Module, x: Tensor, similarity: Tensor) -> Tensor:
    """SC-CLIP's last attention: the mean of ``softmax(3 (S - mean(S)))`` (entries below the
    mean masked out) and ``softmax(k k^T / sqrt(d))``, applied to the values, then the output
    projection; no residual, no FFN.

    Args:
        block (nn.Module): the last transformer block.
        x (Tensor): ``(B, N, D)`` patch tokens.
        similarity (Tensor): ``(B, N, N)`` patch cosine similarities.
    """
    _, k, v = block.attn.split_qkv(block.ln_1(x))
    shifted = (similarity - similarity.mean(dim=(-2, -1), keepdim=True)) * 3.0
    shifted = shifted.masked_fill(shifted < 0, float('-inf'))
    key_attention = ((k @ k.transpose(-2, -1)) * k.shape[-1]**-0.5).softmax(dim=-1)
    attention = (shifted.softmax(dim=-1).unsqueeze(1).to(k.dtype) + key_attention) / 2
    return _layer_scale(block, 'ls_1', block.attn.merge_heads(attention @ v))


@MODELS.register_module()
class SCCLIPDense(nn.Module):
    """SC-CLIP's dense forward of a ViT image tower (see the module docstring).

    Defaults are SC-CLIP's for 12-block ViT-B/16 (``configs/base_config.py``; ``beta`` and the
    LOF settings from ``clip/model.py``); block indices count from 0.

    Args:
        pre_adjust_index (int): block whose output similarity guides the last attention (8).
        post_adjust_index (int): block whose output similarity aggregates the output (3).
        fusion_range (tuple[int, int]): blocks ``[start, end)`` summed for the multi-level
            path ((3, 10)).
        class_residual (float): weight of the class token added to every output (0.3).
        similarity_threshold (float): similarities below it are dropped in the aggregations
            (0.4).
        num_neighbours (int): LOF neighbours (30).
        contamination (float): fraction of patches taken as anomalies (0.05).
    """

    def __init__(self,
                 pre_adjust_index: int = 8,
                 post_adjust_index: int = 3,
                 fusion_range: Tuple[int, int] = (3, 10),
                 class_residual: float = 0.3,
                 similarity_threshold: float = 0.4,
                 num_neighbours: int = 30,
                 contamination: float = 0.05):
        super().__init__()
        if not fusion_range[0] < fusion_range[1]:
            raise ValueError(f'fusion_range must be [start, end) with start < end, got '
                             f'{fusion_range}')
        self.pre_adjust_index = pre_adjust_index
        self.post_adjust_index = post_adjust_index
        self.fusion_range = tuple(fusion_range)
        self.class_residual = class_residual
        self.similarity_threshold = similarity_threshold
        self.num_neighbours = num_neighbours
        self.contamination = contamination

    def _check_tower(self, tower: nn.Module) -> None:
        last = max(self.pre_adjust_index, self.post_adjust_index, self.fusion_range[1] - 1)
        if last > tower.depth - 2 or min(self.pre_adjust_index, self.post_adjust_index,
                                         self.fusion_range[0]) < 0:
            raise ValueError(f'SC-CLIP block indices (pre {self.pre_adjust_index}, post '
                             f'{self.post_adjust_index}, fusion {self.fusion_range}) must lie '
                             f'in [0, {tower.depth - 2}] for a {tower.depth}-block tower')
        if tower.num_prefix_tokens < 1:
            raise ValueError('SC-CLIP adds the class token to every output; this tower has no '
                             'class token')

    def _similarity(self, patches: Tensor) -> Tensor:
        patches = F.normalize(patches, dim=-1)
        return patches @ patches.transpose(-2, -1)

    def _thresholded(self, similarity: Tensor) -> Tensor:
        return similarity.masked_fill(similarity < self.similarity_threshold, 0.0)

    def forward(self,
                tower: nn.Module,
                images: Tensor,
                text_embeddings: Optional[Tensor] = None) -> Tensor:
        """``(B, 3, H, W)`` images -> ``(B, C, h, w)`` projected patch embeddings
        (``text_embeddings`` is unused)."""
        self._check_tower(tower)
        prefix = tower.num_prefix_tokens
        x, (h, w) = tower.embed(images)
        outputs = []
        for block in tower.blocks[:-1]:
            x = block(x)
            outputs.append(x)
        last = tower.blocks[-1]
        class_token = x[:, :1]
        outliers, _ = local_outlier_factor(x[:, prefix:], self.num_neighbours, self.contamination)
        outliers = outliers.view(-1, h, w)

        def filled(tokens: Tensor) -> Tensor:
            maps = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, h, w)
            return fill_from_neighbours(maps, outliers).flatten(2).transpose(1, 2)

        x = filled(x[:, prefix:])
        guide = self._similarity(filled(outputs[self.pre_adjust_index][:, prefix:]))
        x = aggregate(x, self._thresholded(guide))
        x = similarity_attention(last, x, guide) + self.class_residual * class_token
        after = self._thresholded(self._similarity(outputs[self.post_adjust_index][:, prefix:]))
        x = aggregate(x, after)
        fused = torch.stack(outputs[self.fusion_range[0]:self.fusion_range[1]]).sum(dim=0)
        fused = (
            similarity_attention(last, fused[:, prefix:], guide) +
            self.class_residual * fused[:, :1])
        x = x + aggregate(fused, after)
        dense = tower.project_patches(x)
        return dense.transpose(1, 2).reshape(x.shape[0], -1, h, w)
