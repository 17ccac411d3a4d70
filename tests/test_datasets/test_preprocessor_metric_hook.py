import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate, pseudo_collate
from mmengine.logging import MessageHub
from mmpretrain.structures import DataSample

from silc_seg.datasets.transforms import PackSILCInputs
from silc_seg.engine.hooks import DataStatsHook
from silc_seg.evaluation.metrics import ImageTextRetrievalRecall, retrieval_recall
from silc_seg.models.data_preprocessors import SILCDataPreprocessor


def _sample(b, num_global=2, num_local=3):
    """Views whose pixels say (sample b, view v): channel 0 = b, channel 1 = v."""

    def view(v, size):
        img = np.zeros((size, size, 3), np.uint8)
        img[..., 0], img[..., 1], img[..., 2] = b, v, 200
        return img

    views = [view(v, 8) for v in range(num_global)]
    views += [view(num_global + v, 4) for v in range(num_local)]
    out = PackSILCInputs(num_global_crops=num_global)(
        dict(img=views, text=torch.full((5, ), b), caption=f'c{b}'))
    return out


@pytest.mark.slow
@pytest.mark.parametrize('collate', [default_collate, pseudo_collate])
def test_view_major_layout_and_normalization(collate):
    batch = collate([_sample(b) for b in range(4)])
    pre = SILCDataPreprocessor(mean=(10., 20., 30.), std=(2., 4., 5.), bgr_to_rgb=True)
    out = pre(batch, training=True)
    glob, loc, text = (out['inputs'][k] for k in ('global_crops', 'local_crops', 'text'))
    assert glob.shape == (2 * 4, 3, 8, 8) and glob.dtype == torch.float32
    assert loc.shape == (3 * 4, 3, 4, 4)
    assert text.shape == (4, 5) and text.dtype == torch.long
    assert text[:, 0].tolist() == [0, 1, 2, 3]
    # bgr_to_rgb: stored channel 0 (sample id) is output channel 2, normalized with mean/std[2].
    for crops, num_views, offset in ((glob, 2, 0), (loc, 3, 2)):
        for row in range(num_views * 4):
            v, b = divmod(row, 4)  # row = v * B + b
            assert crops[row, 2, 0, 0].item() == pytest.approx((b - 30.) / 5.)
            assert crops[row, 1, 0, 0].item() == pytest.approx((offset + v - 20.) / 4.)
            assert crops[row, 0, 0, 0].item() == pytest.approx((200 - 10.) / 2.)
    assert [s.caption for s in out['data_samples']] == ['c0', 'c1', 'c2', 'c3']


def test_val_layout_and_errors():
    samples = [
        PackSILCInputs()(dict(img=np.full((6, 7, 3), b, np.uint8), text=torch.zeros(4)))
        for b in range(3)
    ]
    out = SILCDataPreprocessor(
        bgr_to_rgb=False, mean=(0, 0, 0), std=(1, 1, 1))(
            pseudo_collate(samples))
    assert out['inputs']['image'].shape == (3, 3, 6, 7)
    assert out['inputs']['image'][:, 0, 0, 0].tolist() == [0., 1., 2.]
    samples.append(PackSILCInputs()(dict(img=np.zeros((5, 7, 3), np.uint8), text=torch.zeros(4))))
    with pytest.raises(ValueError, match='same shape'):
        SILCDataPreprocessor()(pseudo_collate(samples))
    with pytest.raises(TypeError, match='inputs as a dict'):
        SILCDataPreprocessor()(dict(inputs=[torch.zeros(3, 2, 2)]))


def test_retrieval_recall_function():
    sim = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8], [0.1, 0.7, 0.6]])
    pos = torch.eye(3, dtype=torch.bool)
    # row 0 hit at rank 1; row 1 correct col 1 at rank 2; row 2 correct col 2 at rank 2.
    assert retrieval_recall(sim, pos, (1, 2, 5)) == {
        1: pytest.approx(100 / 3),
        2: pytest.approx(100.),
        5: pytest.approx(100.)
    }


def test_retrieval_metric_against_brute_force():
    torch.manual_seed(0)
    n, dim = 40, 8
    images = torch.nn.functional.normalize(torch.randn(n, dim), dim=1)
    texts = torch.nn.functional.normalize(images + 0.6 * torch.randn(n, dim), dim=1)
    captions = [f'cap {i}' for i in range(n)]
    captions[5] = captions[6]  # a duplicate caption: either text is a hit for both images
    metric = ImageTextRetrievalRecall(topk=(1, 5))
    for i in range(0, n, 16):
        metric.process(None, [
            dict(image_embedding=images[j], text_embedding=texts[j], caption=captions[j])
            for j in range(i, min(i + 16, n))
        ])
    results = metric.compute_metrics(metric.results)
    sim = images @ texts.t()
    for name, s in (('i2t', sim), ('t2i', sim.t())):
        for k in (1, 5):
            hits = 0
            for q in range(n):
                top = s[q].argsort(descending=True)[:k].tolist()
                hits += any(captions[g] == captions[q] for g in top)
            assert results[f'{name}_R@{k}'] == pytest.approx(100 * hits / n)
    assert 0 < results['i2t_R@1'] < 100
    with pytest.raises(KeyError, match='image_embedding'):
        metric.process(None, [dict(text_embedding=texts[0])])


class _Runner:

    def __init__(self, max_iters):
        self.message_hub = MessageHub.get_instance('data_stats_test')
        self.iter = 0
        self.max_iters = max_iters
        self.epoch = 0


def _batch(skips):
    samples = []
    for s in skips:
        sample = DataSample()
        sample.set_metainfo(dict(num_skipped=s))
        samples.append(sample)
    return dict(data_samples=samples)


def test_data_stats_hook_counts_and_rate():
    runner = _Runner(max_iters=5)
    hook = DataStatsHook(interval=2, window_size=3)
    hook.before_train(runner)
    per_iter = [[0, 1], [2, 0], [0, 0], [1, 1], [0, 3]]
    seen = []
    for i, skips in enumerate(per_iter):
        runner.iter = i
        hook.before_train_iter(runner, i, _batch(skips))
        hook.after_train_iter(runner, i, _batch(skips))
        seen.append(runner.message_hub.get_scalar('train/skipped_samples').current())
    # Synced every 2 iterations (after iters 2 and 4) and at the last one.
    assert seen == [0, 3, 3, 5, 8]
    assert runner.message_hub.get_scalar('train/images_per_sec').current() > 0
    # A resumed run continues the count.
    hook2 = DataStatsHook(interval=1)
    hook2.before_train(runner)
    runner.iter = 5
    hook2.before_train_iter(runner, 0, _batch([4]))
    hook2.after_train_iter(runner, 0, _batch([4]))
    assert runner.message_hub.get_scalar('train/skipped_samples').current() == 12
