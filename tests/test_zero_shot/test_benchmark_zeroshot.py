"""tools/analysis_tools/benchmark_zeroshot.py compares like with like: its written-out reference
loop (SCLIP's one-window-at-a-time inference) predicts what ZeroShotSegmentor.predict does."""
from pathlib import Path

import pytest
import torch
from mmseg.structures import SegDataSample

from silc_seg.utils import import_file_as_module
from ..fake_checkouts import write_fake_sclip
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


# A stand-in for a wangf3014/SCLIP checkout: ``CLIPForSegmentation`` records how the benchmark
# builds it and predicts through ``PREDICT``, which the test sets (the real one runs its own
# CLIP tower); ``net.encode_image`` is what the benchmark times as its image tower.
FAKE_SEGMENTOR = '''
import torch
from prompts.imagenet_template import openai_imagenet_template

PREDICT = None


class Net(torch.nn.Module):
    def encode_image(self, image):
        return image.mean()


class CLIPForSegmentation(torch.nn.Module):
    def __init__(self, clip_path, name_path, device='cuda', **kwargs):
        super().__init__()
        self.state_dict_keys = sorted(torch.load(clip_path, map_location='cpu'))
        with open(name_path) as f:
            self.names = [line.strip() for line in f]
        self.templates = list(openai_imagenet_template)
        self.device, self.kwargs, self.net = device, kwargs, Net()

    def predict(self, inputs, data_samples):
        self.net.encode_image(inputs)
        return PREDICT(inputs, data_samples)
'''


@pytest.fixture
def fake_sclip(tmp_path):
    import sys
    root = write_fake_sclip(
        tmp_path / 'fake_sclip', FAKE_SEGMENTOR, {
            'base_config.py':
            "model = dict(type='CLIPForSegmentation', clip_path='ViT-B/16')\n",
            'cfg_voc21.py':
            "_base_ = './base_config.py'\nmodel = dict(name_path="
            "'./configs/cls_voc21.txt', logit_scale=65, prob_thd=0.1)\n"
        })
    saved_path = list(sys.path)
    yield root
    sys.path[:] = saved_path
    for name in ('clip_segmentor', 'prompts', 'prompts.imagenet_template'):
        sys.modules.pop(name, None)


def test_official_sclip_is_built_from_its_config_with_the_cut_templates(fake_sclip, tmp_path):
    benchmark = load_benchmark()
    tool = benchmark.load_compare_tool()
    weights = str(tmp_path / 'openai.pt')
    state_dict = tool.make_openai_weights(weights, 'tiny')
    official = benchmark.build_official_sclip(str(fake_sclip), 'voc21', weights, 1, 'cpu')
    assert official.state_dict_keys == sorted(state_dict)
    assert official.names == [f'class{i}' for i in range(21)]
    assert [t('cat') for t in official.templates] == ['a bad photo of a cat.']
    assert official.kwargs == dict(logit_scale=65, prob_thd=0.1)
    assert str(official.device) == 'cpu'
    with pytest.raises(SystemExit, match='SCLIP preset'):
        benchmark.sclip_preset_dataset('configs/zero_shot/naclip/naclip_vit-b16_voc21.py')
    assert benchmark.sclip_preset_dataset(
        'configs/zero_shot/sclip/sclip_vit-b16_coco-stuff171.py') == 'coco-stuff171'


@pytest.mark.parametrize('same_labels', [True, False])
def test_three_paths_are_timed_with_their_towers_and_compared(fake_sclip, tmp_path, same_labels):
    import argparse
    import sys
    benchmark = load_benchmark()
    weights = str(tmp_path / 'openai.pt')
    benchmark.load_compare_tool().make_openai_weights(weights, 'tiny')
    official = benchmark.build_official_sclip(str(fake_sclip), 'voc21', weights, 1, 'cpu')
    model = build_segmentor(dict(mode='slide', crop_size=(24, 24), stride=(12, 12)))

    def predict(inputs, samples):
        results = model.predict(inputs, samples)
        if not same_labels:
            results[0].pred_sem_seg.data = results[0].pred_sem_seg.data + 1
        return results

    sys.modules['clip_segmentor'].PREDICT = predict
    args = argparse.Namespace(
        num_images=2, image_size=(40, 54), repeats=1, batch_size=1, device='cpu')
    if not same_labels:
        with pytest.raises(RuntimeError, match='paths disagree'):
            benchmark.time_images(model, args, official)
        return
    result = benchmark.time_images(model, args, official)
    assert set(result['seconds']) == {'ours', 'loop', 'official'}
    assert result['agreement'] == dict(loop=1.0, official=1.0)
    for name, seconds in result['seconds'].items():
        # Every path ran through a timed tower, which is only a part of the path.
        assert 0 < result['tower_seconds'][name] < seconds
