"""CASS's object-presence-driven text-embedding adjustment (Kim et al., CVPR 2025).

The equations follow MICV-yonsei/CASS ``cass_segmentor.py`` (``hierarchical_clustering``,
``hierarchical_prompt``, ``forward_feature``):

1. the queries are grouped once by Ward linkage of their cosine distances, cut at
   ``cluster_threshold``;
2. per window, ``p = g^T t_q`` is the object-presence prior of every query (``g`` the normalized
   class-token embedding of the whole image, or of the window); in each group only the query
   with the largest ``p`` is adjusted: ``t' = normalize((1 - alpha) t + alpha m)``, ``m`` the
   normalized mean of the ``top_k`` patch embeddings most similar to ``t``;
3. the logits are ``(1 - beta) f^T t'_q + beta p_q`` for every normalized patch embedding ``f``.
"""
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from torch import Tensor, nn

from silc_seg.registry import MODELS


def ward_clusters(text_embeddings: Tensor, threshold: float) -> Tensor:
    """Cluster index (from 0) of every query: Ward linkage of the cosine distances
    ``clip(1 - cos, 0, 2)`` (float64, zero diagonal) cut at ``threshold``.

    Args:
        text_embeddings (Tensor): ``(Q, C)`` query embeddings.
        threshold (float): the distance criterion of ``fcluster``.

    Returns:
        Tensor: ``(Q,)`` int64 cluster indices, ``0 .. num_clusters - 1``.
    """
    num_queries = text_embeddings.shape[0]
    if num_queries < 2:
        return torch.zeros(num_queries, dtype=torch.long)
    embeddings = F.normalize(text_embeddings.detach().double().cpu(), dim=-1).numpy()
    distances = np.clip(1.0 - embeddings @ embeddings.T, 0.0, 2.0)
    distances = (distances + distances.T) / 2
    np.fill_diagonal(distances, 0.0)
    tree = linkage(squareform(distances, checks=False), method='ward')
    return torch.from_numpy(fcluster(tree, t=threshold, criterion='distance') - 1).long()


@MODELS.register_module()
class CASSTextAdjustment(nn.Module):
    """Query logits of patch embeddings with CASS's text adjustment (see the module docstring).

    Args:
        cluster_threshold (float): the reference's ``h_threshold``.
        mean_vector_weight (float): ``alpha``.
        global_weight (float): ``beta``, the reference's ``global_semantics_weight``.
        top_k (int): patches averaged into the object direction ``m``.
    """

    def __init__(self,
                 cluster_threshold: float = 0.1,
                 mean_vector_weight: float = 0.03,
                 global_weight: float = 0.1,
                 top_k: int = 2):
        super().__init__()
        if cluster_threshold < 0:
            raise ValueError(f'cluster_threshold must be >= 0, got {cluster_threshold}')
        if top_k < 1:
            raise ValueError(f'top_k must be >= 1, got {top_k}')
        self.cluster_threshold = cluster_threshold
        self.mean_vector_weight = mean_vector_weight
        self.global_weight = global_weight
        self.top_k = top_k

    def clusters(self, text_embeddings: Tensor) -> Tensor:
        """``(Q,)`` cluster index of every query (:func:`ward_clusters`)."""
        return ward_clusters(text_embeddings, self.cluster_threshold)

    def adjusted_queries(self, patches: Tensor, prior: Tensor, text_embeddings: Tensor,
                         clusters: Tensor) -> Tensor:
        """One window's adjusted queries.

        Args:
            patches (Tensor): ``(N, C)`` normalized patch embeddings.
            prior (Tensor): ``(Q,)`` object-presence prior.
            text_embeddings (Tensor): ``(Q, C)`` normalized queries.
            clusters (Tensor): ``(Q,)`` cluster indices.

        Returns:
            Tensor: ``(Q, C)``.
        """
        adjusted = text_embeddings.clone()
        clusters = clusters.to(prior.device)
        alpha = self.mean_vector_weight
        for cluster in range(int(clusters.max()) + 1):
            members = torch.nonzero(clusters == cluster).flatten()
            query = int(members[prior[members].argmax()])
            text = F.normalize(text_embeddings[query], dim=0)
            top = (patches @ text).topk(min(self.top_k, patches.shape[0])).indices
            mean_vector = F.normalize(patches[top].mean(dim=0), dim=0)
            adjusted[query] = F.normalize((1 - alpha) * text + alpha * mean_vector, dim=0)
        return adjusted

    def forward(self,
                dense_embeddings: Tensor,
                global_embeddings: Tensor,
                text_embeddings: Tensor,
                clusters: Optional[Tensor] = None) -> Tensor:
        """Adjusted query logits.

        Args:
            dense_embeddings (Tensor): ``(B, C, h, w)`` patch embeddings (any norm).
            global_embeddings (Tensor): ``(B, C)`` class-token embeddings giving the prior.
            text_embeddings (Tensor): ``(Q, C)`` L2-normalized queries.
            clusters (Tensor, optional): ``(Q,)`` from :meth:`clusters` (computed if None).

        Returns:
            Tensor: ``(B, Q, h, w)`` logits.
        """
        if clusters is None:
            clusters = self.clusters(text_embeddings)
        batch, channels, height, width = dense_embeddings.shape
        patches = F.normalize(dense_embeddings.flatten(2).transpose(1, 2), dim=-1)
        text_embeddings = text_embeddings.to(patches.dtype)
        priors = F.normalize(global_embeddings.to(patches.dtype), dim=-1) @ text_embeddings.T
        logits = []
        for window, prior in zip(patches, priors):
            adjusted = self.adjusted_queries(window, prior, text_embeddings, clusters)
            logits.append((window @ adjusted.T) * (1 - self.global_weight) +
                          prior * self.global_weight)
        logits = torch.stack(logits)  # (B, N, Q)
        return logits.transpose(1, 2).reshape(batch, -1, height, width)
