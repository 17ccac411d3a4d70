"""ZeroShotSegmentor on the real towers: every dense variant runs end to end, window batching and
padding are exact, and a SILC pretraining checkpoint covers every segmentor key."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.structures import SegDataSample

from silc_seg.models.layers.dense_attention import DENSE_VARIANTS
from silc_seg.registry import MODELS
from silc_seg.utils import check_checkpoint_fits, load_model_checkpoint

TOWERS = dict(
    image_encoder=dict(
        type='SILCVisionTransformer',
        img_size=32,
        patch_size=8,
        width=32,
        depth=2,
        num_heads=2,
        output_dim=16),
    text_encoder=dict(
        type='SILCTextTransformer',
        context_length=16,
        width=32,
        depth=1,
        num_heads=2,
        output_dim=16),
    tokenizer=dict(type='CLIPTokenizer', context_length=16))


def build(variant='plain', test_cfg=None):
    torch.manual_seed(0)
    return MODELS.build(
        dict(
            type='ZeroShotSegmentor',
            **TOWERS,
            class_names=['cat', 'grass, lawn', 'sky'],
            templates='short',
            dense_variant=variant,
            test_cfg=test_cfg or dict(mode='slide', crop_size=(32, 32), stride=(16, 16)))).eval()


@pytest.mark.parametrize('variant', DENSE_VARIANTS)
def test_every_variant_segments(variant):
    model = build(variant)
    samples = [SegDataSample(metainfo=dict(img_shape=(40, 52), ori_shape=(80, 104)))]
    result = model.predict(torch.randn(1, 3, 40, 52), samples)[0]
    assert result.seg_logits.data.shape == (3, 80, 104)
    # Class scores are each class's best synonym's share of one softmax: they sum to <= 1.
    sums = result.seg_logits.data.sum(0)
    assert sums.max() <= 1 + 1e-5 and sums.min() > 0.5
    assert torch.equal(result.pred_sem_seg.data, result.seg_logits.data.argmax(0, keepdim=True))


@pytest.mark.parametrize('variant', ['plain', 'naclip'])
def test_window_batching_and_whole_equivalence(variant):
    torch.manual_seed(3)
    image = torch.randn(2, 3, 44, 60)
    metas = [dict(img_shape=(44, 60)), dict(img_shape=(37, 51))]
    slide = dict(mode='slide', crop_size=(32, 32), stride=(16, 16))
    one = build(variant, dict(slide, window_batch_size=1)).inference(image, metas)
    many = build(variant, dict(slide, window_batch_size=100)).inference(image, metas)
    for a, b in zip(one, many):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    whole = build(variant, dict(mode='whole')).inference(image, metas)
    covering = build(variant, dict(mode='slide', crop_size=(64, 64), stride=(8, 8)))
    for a, b in zip(whole, covering.inference(image, metas)):
        torch.testing.assert_close(a, b)


@pytest.mark.slow
def test_silc_checkpoint_covers_the_zero_shot_segmentor():
    init_default_scope('mmseg')
    torch.manual_seed(0)
    silc = MODELS.build(Config.fromfile('configs/silc/demo_silc_tiny.py').model)
    segmentor = MODELS.build(Config.fromfile('configs/silc/zs_demo.py').model)
    # Every segmentor key is in the SILC checkpoint, with the same shape.
    unused = check_checkpoint_fits(segmentor.state_dict(), silc.state_dict(), 'silc')
    assert all(key.split('.')[0] not in ('image_encoder', 'text_encoder') for key in unused)
    segmentor.load_state_dict({k: v for k, v in silc.state_dict().items() if k not in unused})
    text = segmentor.encode_queries(['red stripes'])
    expected = torch.nn.functional.normalize(
        silc.text_encoder(
            segmentor.tokenizer([t.format('red stripes') for t in segmentor.templates])),
        dim=-1)
    torch.testing.assert_close(text[0], torch.nn.functional.normalize(expected.mean(0), dim=0))


@pytest.mark.slow
def test_pretraining_checkpoint_with_runner_meta_loads_into_the_segmentor(tmp_path):
    """A pretraining run's checkpoint records its image-text dataset's metainfo (no class
    names) as meta['dataset_meta']; loading it into the segmentor keeps the segmentor's own
    vocabulary source instead of failing (tools/test.py on the demo checkpoint)."""
    init_default_scope('mmseg')
    torch.manual_seed(0)
    silc = MODELS.build(Config.fromfile('configs/silc/demo_silc_tiny.py').model)
    path = str(tmp_path / 'iter_200.pth')
    torch.save(dict(state_dict=silc.state_dict(), meta=dict(dataset_meta=dict())), path)
    segmentor = MODELS.build(Config.fromfile('configs/silc/zs_demo.py').model)
    load_model_checkpoint(segmentor, path)
    assert segmentor.dataset_meta is None
    torch.testing.assert_close(segmentor.image_encoder.pos_embed, silc.image_encoder.pos_embed)
    # Class names in the checkpoint's metainfo are still handed over.
    torch.save(
        dict(
            state_dict=silc.state_dict(),
            meta=dict(dataset_meta=dict(classes=('red stripes', 'plain blue')))), path)
    load_model_checkpoint(segmentor, path)
    assert segmentor.dataset_meta == dict(classes=('red stripes', 'plain blue'))
