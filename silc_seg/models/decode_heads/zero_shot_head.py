"""Decode head turning dense patch embeddings into class scores by cosine similarity with text
embeddings (MaskCLIP of Zhou et al. / SCLIP / NACLIP-style zero-shot segmentation)."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from silc_seg.registry import MODELS


@MODELS.register_module()
class ZeroShotHead(BaseModule):
    """Parameter-free head: patch-text cosine similarity, softmax over the vocabulary, max over
    the synonyms of each class, then optional background rules.

    It holds no weights, so any checkpoint with the two towers loads into the segmentor.

    Args:
        logit_scale (float): temperature multiplying the cosine similarities before the softmax
            (SCLIP/NACLIP use 40-65 depending on the dataset).
        prob_thd (float): pixels whose best class probability is below it become
            ``background_index``. 0 disables it.
        area_thd (float, optional): a non-background class predicted on less than this fraction
            of the image's predicted foreground area is suppressed (its pixels fall to the next
            best class). None disables it.
        background_index (int, optional): the class index of background (0 on VOC-21,
            PC-60, COCO-Object). Required by ``prob_thd`` and ``area_thd``.
        init_cfg (dict, optional): unused, for the BaseModule interface.
    """

    def __init__(self,
                 logit_scale: float = 40.0,
                 prob_thd: float = 0.0,
                 area_thd: Optional[float] = None,
                 background_index: Optional[int] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if (prob_thd > 0 or area_thd is not None) and background_index is None:
            raise ValueError('prob_thd and area_thd assign pixels to the background class: set '
                             'background_index (e.g. 0 for VOC-21, PC-60, COCO-Object)')
        self.logit_scale = logit_scale
        self.prob_thd = prob_thd
        self.area_thd = area_thd
        self.background_index = background_index

    def forward(self, dense_embeddings: Tensor, text_embeddings: Tensor) -> Tensor:
        """Cosine similarity of every patch with every text query.

        Args:
            dense_embeddings (Tensor): (B, C, h, w) patch embeddings (any norm).
            text_embeddings (Tensor): (Q, C) L2-normalized query embeddings.

        Returns:
            Tensor: (B, Q, h, w) cosine similarities.
        """
        if dense_embeddings.shape[1] != text_embeddings.shape[1]:
            raise ValueError(
                f'image embeddings have {dense_embeddings.shape[1]} channels but text embeddings '
                f'{text_embeddings.shape[1]}: the two towers do not share an embedding space')
        dense_embeddings = F.normalize(dense_embeddings, dim=1)
        return torch.einsum('bchw,qc->bqhw', dense_embeddings,
                            text_embeddings.to(dense_embeddings.dtype))

    def class_probabilities(self, query_logits: Tensor, query_to_class: Sequence[int],
                            num_classes: int) -> Tensor:
        """Softmax over all queries, then the max over each class's synonyms.

        Args:
            query_logits (Tensor): (Q, H, W) cosine similarities of one image.
            query_to_class (Sequence[int]): class index of each query.
            num_classes (int): number of classes.

        Returns:
            Tensor: (num_classes, H, W) probabilities (a class's best synonym).
        """
        probabilities = (query_logits * self.logit_scale).softmax(dim=0)
        if len(query_to_class) == num_classes:
            return probabilities
        index = torch.as_tensor(query_to_class, device=probabilities.device)
        index = index.view(-1, 1, 1).expand_as(probabilities)
        class_probabilities = probabilities.new_zeros((num_classes, ) + probabilities.shape[1:])
        return class_probabilities.scatter_reduce(
            0, index, probabilities, reduce='amax', include_self=False)

    def predict_labels(self, class_probabilities: Tensor) -> Tensor:
        """Arg-max labels with the background rules applied.

        Args:
            class_probabilities (Tensor): (C, H, W) probabilities of one image.

        Returns:
            Tensor: (1, H, W) int64 labels.
        """
        probabilities = class_probabilities
        num_classes = probabilities.shape[0]
        if self.area_thd is not None:
            # Suppress classes covering too little of the predicted foreground, as in SCLIP.
            predicted = F.one_hot(probabilities.argmax(0), num_classes).to(probabilities.dtype)
            area = predicted.sum(dim=(0, 1))
            foreground = torch.ones_like(area, dtype=torch.bool)
            foreground[self.background_index] = False
            keep = area > self.area_thd * area[foreground].sum()
            keep[self.background_index] = True
            probabilities = probabilities * keep.to(probabilities.dtype).view(-1, 1, 1)
        best_probability, labels = probabilities.max(dim=0, keepdim=True)
        if self.prob_thd > 0:
            labels[best_probability < self.prob_thd] = self.background_index
        return labels
