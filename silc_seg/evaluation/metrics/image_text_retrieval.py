from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric

from silc_seg.registry import METRICS


def retrieval_recall(similarity: torch.Tensor, positives: torch.Tensor,
                     topk: Sequence[int]) -> Dict[int, float]:
    """Recall@k (%) of ranking the columns of ``similarity`` for each row.

    A row counts as a hit at ``k`` if any of its positives is among its ``k`` highest-scoring
    columns. Ties are broken by column order (``torch.topk``).

    Args:
        similarity (Tensor): ``(Q, G)`` query-gallery scores.
        positives (Tensor): ``(Q, G)`` bool, True where the gallery item matches the query.
        topk (Sequence[int]): The ``k`` values.

    Returns:
        dict[int, float]: ``{k: recall@k in percent}``.
    """
    if similarity.shape != positives.shape:
        raise ValueError(f'similarity {tuple(similarity.shape)} and positives '
                         f'{tuple(positives.shape)} differ in shape')
    if not positives.any(dim=1).all():
        raise ValueError('every query needs at least one positive')
    max_k = min(max(topk), similarity.size(1))
    ranked = similarity.topk(max_k, dim=1).indices
    hits = positives.gather(1, ranked)
    return {k: hits[:, :min(k, max_k)].any(dim=1).float().mean().item() * 100 for k in topk}


@METRICS.register_module()
class ImageTextRetrievalRecall(BaseMetric):
    """Image-to-text and text-to-image retrieval recall@k over a paired validation set.

    Reads the L2-normalized ``image_embedding`` and ``text_embedding`` that ``SILC.predict`` sets
    on each data sample (one image and one caption per sample) and ranks the whole set. A text is
    a positive of an image when it is that image's caption or an identical string (so duplicate
    captions do not count as misses). Reports ``i2t_R@k``, ``t2i_R@k`` and their mean
    ``mean_R``.

    Args:
        topk (Sequence[int]): The ``k`` of recall@k. Defaults to ``(1, 5, 10)``.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Metric name prefix. Defaults to ``'retrieval'``.
    """

    default_prefix: Optional[str] = 'retrieval'

    def __init__(self,
                 topk: Sequence[int] = (1, 5, 10),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not topk or min(topk) < 1:
            raise ValueError(f'topk must be positive integers, got {topk}')
        self.topk = tuple(topk)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Store the embeddings and caption of every sample."""
        for sample in data_samples:
            for key in ('image_embedding', 'text_embedding'):
                if key not in sample:
                    raise KeyError(f'{key} missing from the prediction; the model must set it in '
                                   'predict mode (see docs/design.md)')
            self.results.append(
                dict(
                    image_embedding=sample['image_embedding'].detach().float().cpu(),
                    text_embedding=sample['text_embedding'].detach().float().cpu(),
                    caption=sample.get('caption', str(len(self.results)))))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Rank every caption for every image and vice versa."""
        images = torch.stack([r['image_embedding'] for r in results])
        texts = torch.stack([r['text_embedding'] for r in results])
        captions = [r['caption'] for r in results]
        caption_ids = {c: i for i, c in enumerate(dict.fromkeys(captions))}
        ids = torch.tensor([caption_ids[c] for c in captions])
        positives = ids[:, None] == ids[None, :]
        similarity = images @ texts.t()
        metrics = {}
        for name, recall in (('i2t', retrieval_recall(similarity, positives, self.topk)),
                             ('t2i', retrieval_recall(similarity.t(), positives.t(), self.topk))):
            for k, value in recall.items():
                metrics[f'{name}_R@{k}'] = value
        metrics['mean_R'] = sum(metrics.values()) / len(metrics)
        return metrics
