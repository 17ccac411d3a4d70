"""tools/analysis_tools/benchmark_zeroshot.py compares like with like: its written-out reference
loop (SCLIP's one-window-at-a-time inference) predicts what ZeroShotSegmentor.predict does."""
from pathlib import Path

import pytest
import torch
from mmseg.structures import SegDataSample

from silc_seg.utils import import_file_as_module
from .test_segmentor import build_segmentor

PATH = Path(__file__).resolve().parents[2] / 'tools/analysis_tools/benchmark_zeroshot.py'


def load_benchmark():
    return import_file_as_module(str(PATH), 'benchmark_zeroshot')


@pytest.mark.parametrize('partial_patches', ['pad', 'drop'])
def test_reference_loop_predicts_the_segmentor_labels(partial_patches):
    benchmark = load_benchmark()
    model = build_segmentor(
        dict(
            mode='slide',
            crop_size=(24, 24),
            stride=(12, 12),
            window_batch_size=8,
            partial_patches=partial_patches),
        pamr=dict(num_iter=2, dilations=(1, 2)))
    torch.manual_seed(3)
    # The second image is smaller than a window and not patch-aligned (22 = 5 patches + 2 px).
    images = [torch.randn(3, 40, 54), torch.randn(3, 22, 30)]
    text_embeddings, query_to_class = model.text_embeddings()
    assert len(query_to_class) > model.num_classes  # synonyms are merged by the loop too
    loop = benchmark.reference_loop_predict(model, images, text_embeddings, query_to_class)
    for image, labels in zip(images, loop):
        sample = SegDataSample(
            metainfo=dict(img_shape=image.shape[-2:], ori_shape=image.shape[-2:]))
        ours = model.predict(image[None], [sample])[0].pred_sem_seg.data
        assert torch.equal(ours, labels)
        assert labels.unique().numel() > 1  # not a trivially uniform prediction
