"""ZeroShotSegmentor inference paths, text-embedding cache and vocabulary errors (toy towers)."""
import pytest
import torch
import torch.nn.functional as F
from mmseg.structures import SegDataSample

from silc_seg.models.segmentors.zero_shot_segmentor import sliding_windows
from silc_seg.registry import MODELS
from . import toy_towers  # noqa: F401  (registers the toy towers)


def build_segmentor(test_cfg=None, **kwargs):
    torch.manual_seed(0)
    cfg = dict(
        type='ZeroShotSegmentor',
        image_encoder=dict(type='silc_test.ToyImageEncoder'),
        text_encoder=dict(type='silc_test.ToyTextEncoder'),
        tokenizer=dict(type='silc_test.ToyWordTokenizer'),
        decode_head=dict(type='ZeroShotHead', logit_scale=20.0),
        templates='short',
        test_cfg=test_cfg or dict(mode='whole'))
    cfg.setdefault('class_names', ['cat', 'grass, lawn', 'sky'])
    cfg.update(kwargs)
    return MODELS.build(cfg).eval()


def samples_for(shapes):
    return [SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape)) for shape in shapes]


def test_slide_equals_whole_when_one_window_covers_the_image():
    torch.manual_seed(1)
    image = torch.randn(1, 3, 30, 42)
    whole = build_segmentor().inference(image, [dict(img_shape=(30, 42))])[0]
    slide = build_segmentor(dict(mode='slide', crop_size=(48, 48),
                                 stride=(16, 16))).inference(image, [dict(img_shape=(30, 42))])[0]
    assert whole.shape == (4, 30, 42)  # 4 queries: cat, grass, lawn, sky
    torch.testing.assert_close(slide, whole)


def test_sliding_windows_layout():
    boxes = sliding_windows(40, 50, (16, 24), (8, 12))
    assert boxes[0] == (0, 16, 0, 24)
    assert boxes[-1] == (24, 40, 26, 50)
    covered = torch.zeros(40, 50)
    for y1, y2, x1, x2 in boxes:
        assert (y2 - y1, x2 - x1) == (16, 24)
        covered[y1:y2, x1:x2] += 1
    assert covered.min() >= 1
    assert sliding_windows(10, 12, (16, 16), (8, 8)) == [(0, 10, 0, 12)]


def test_batched_windows_equal_one_window_at_a_time_and_the_naive_loop():
    torch.manual_seed(2)
    shapes = [(40, 56), (33, 45)]  # the second is padded in the batch and not patch-aligned
    inputs = torch.zeros(2, 3, 40, 56)
    inputs[0] = torch.randn(3, 40, 56)
    inputs[1, :, :33, :45] = torch.randn(3, 33, 45)
    metas = [dict(img_shape=s) for s in shapes]
    slide_cfg = dict(mode='slide', crop_size=(24, 24), stride=(12, 12))
    one_by_one = build_segmentor(dict(slide_cfg, window_batch_size=1))
    batched = build_segmentor(dict(slide_cfg, window_batch_size=64))
    logits_one = one_by_one.inference(inputs, metas)
    logits_batched = batched.inference(inputs, metas)
    # All windows of both images (same window size) went through the tower together.
    num_windows = sum(len(sliding_windows(*s, (24, 24), (12, 12))) for s in shapes)
    assert batched.image_encoder.num_images == num_windows
    text, _ = batched.text_embeddings()
    for index, (height, width) in enumerate(shapes):
        torch.testing.assert_close(logits_batched[index], logits_one[index])
        # Reference: average of the logits of each window, computed alone.
        total = torch.zeros(4, height, width)
        count = torch.zeros(1, height, width)
        image = inputs[index, :, :height, :width]
        for y1, y2, x1, x2 in sliding_windows(height, width, (24, 24), (12, 12)):
            total[:, y1:y2, x1:x2] += batched._window_logits(image[None, :, y1:y2, x1:x2], text)[0]
            count[:, y1:y2, x1:x2] += 1
        torch.testing.assert_close(logits_batched[index], total / count)


def test_predict_outputs_at_original_size_with_synonyms():
    model = build_segmentor(dict(mode='slide', crop_size=(16, 16), stride=(8, 8)))
    samples = samples_for([(32, 24)])
    samples[0].set_metainfo(dict(ori_shape=(64, 48)))
    results = model.predict(torch.randn(1, 3, 32, 24), samples)
    assert results[0].seg_logits.data.shape == (3, 64, 48)  # 3 classes, synonyms merged
    labels = results[0].pred_sem_seg.data
    assert labels.shape == (1, 64, 48) and labels.dtype == torch.int64
    assert labels.min() >= 0 and labels.max() < 3
    torch.testing.assert_close(results[0].seg_logits.data.argmax(0, keepdim=True), labels)


def test_text_embeddings_are_cached_and_invalidated():
    model = build_segmentor()
    first, query_to_class = model.text_embeddings()
    calls = model.text_encoder.num_calls
    assert query_to_class == [0, 1, 1, 2]
    assert torch.allclose(first.norm(dim=-1), torch.ones(4))
    again, _ = model.text_embeddings()
    assert model.text_encoder.num_calls == calls and again is first
    # New weights -> recomputed, different embeddings.
    state = {k: v + 0.1 for k, v in model.text_encoder.state_dict().items()}
    model.text_encoder.load_state_dict(state)
    changed, _ = model.text_embeddings()
    assert model.text_encoder.num_calls > calls
    assert not torch.allclose(changed, first)
    # New vocabulary -> recomputed for the new queries.
    model.set_vocabulary(['tree', 'road'])
    assert model.text_embeddings()[0].shape == (2, 16)


def test_template_averaging():
    model = build_segmentor(class_names=['cat'])
    prompts = [t.format('cat') for t in model.templates]
    single = torch.nn.functional.normalize(model.text_encoder(model.tokenizer(prompts)), dim=-1)
    expected = torch.nn.functional.normalize(single.mean(0), dim=-1)
    torch.testing.assert_close(model.text_embeddings()[0][0], expected)


def test_vocabulary_from_dataset_meta_and_errors(tmp_path):
    model = build_segmentor(class_names=None)
    with pytest.raises(RuntimeError, match='ModelDatasetMetaHook'):
        model.predict(torch.randn(1, 3, 16, 16))
    model.dataset_meta = dict(classes=('road', 'sky'))
    assert model.vocabulary == [['road'], ['sky']]
    assert model.predict(torch.randn(1, 3, 16, 16))[0].seg_logits.data.shape[0] == 2

    names = tmp_path / 'names.txt'
    names.write_text('road, street\nsky\ntree\n')
    model = build_segmentor(class_names=str(names))
    with pytest.raises(ValueError, match='3 classes but the dataset has 2'):
        model.dataset_meta = dict(classes=('road', 'sky'))
    model.dataset_meta = dict(classes=('road', 'sky', 'tree'))
    assert model.vocabulary[0] == ['road', 'street']


def test_bad_test_cfg_and_training():
    with pytest.raises(ValueError, match='crop_size'):
        build_segmentor(dict(mode='slide', stride=8))
    with pytest.raises(ValueError, match="'whole' or 'slide'"):
        build_segmentor(dict(mode='tiles'))
    with pytest.raises(ValueError, match='unknown dense_variant'):
        build_segmentor(dense_variant='maskclip++')
    with pytest.raises(RuntimeError, match='training-free'):
        build_segmentor().loss(torch.randn(1, 3, 8, 8), samples_for([(8, 8)]))


def test_pamr_refines_the_logits_at_original_size():
    torch.manual_seed(4)
    image = torch.randn(1, 3, 24, 32)
    plain = build_segmentor().predict(image, samples_for([(24, 32)]))[0]
    refined_model = build_segmentor(pamr=dict(num_iter=3, dilations=(1, 2)))
    refined = refined_model.predict(image, samples_for([(24, 32)]))[0]
    assert refined.seg_logits.data.shape == plain.seg_logits.data.shape == (3, 24, 32)
    assert not torch.allclose(refined.seg_logits.data, plain.seg_logits.data)
    # The refinement is PAMR applied to the query logits, guided by the input image.
    logits = refined_model.inference(image, [dict(img_shape=(24, 32))])[0]
    expected = refined_model.decode_head.class_probabilities(
        refined_model.pamr(image, logits[None])[0], [0, 1, 1, 2], 3)
    torch.testing.assert_close(refined.seg_logits.data, expected)


@pytest.mark.parametrize('direction, dim', [('horizontal', 2), ('vertical', 1)])
def test_flipped_inputs_are_flipped_back(direction, dim):
    # As mmseg's TTA: a sample whose input was flipped gets its prediction flipped back.
    model = build_segmentor()
    image = torch.randn(1, 3, 16, 24)
    plain = model.predict(image, samples_for([(16, 24)]))[0]
    samples = samples_for([(16, 24)])
    samples[0].set_metainfo(dict(flip=True, flip_direction=direction))
    flipped = model.predict(image, samples)[0]
    torch.testing.assert_close(flipped.seg_logits.data, plain.seg_logits.data.flip(dim))


def test_partial_patches_drop_is_the_references_whole_image_path():
    """SCLIP / NACLIP: the patch conv ignores the rows / columns that do not fill a patch, and the
    patch logits are stretched bilinearly over the whole image."""
    torch.manual_seed(3)
    image = torch.randn(1, 3, 30, 43)  # 7 x 10 whole 4px patches, 2 rows and 3 columns left
    model = build_segmentor(dict(mode='whole', partial_patches='drop'))
    logits = model.inference(image, [dict(img_shape=(30, 43))])[0]
    text, _ = model.text_embeddings()
    with torch.no_grad():
        dense = model.image_encoder.encode_dense(image[..., :28, :40])['dense']
        patch_logits = torch.einsum('bchw,qc->bqhw', F.normalize(dense, dim=1), text)
        expected = F.interpolate(
            patch_logits, size=(30, 43), mode='bilinear', align_corners=False)[0]
    torch.testing.assert_close(logits, expected)
    padded = build_segmentor(dict(mode='whole')).inference(image, [dict(img_shape=(30, 43))])[0]
    assert not torch.allclose(padded, logits)
    with pytest.raises(ValueError, match='partial_patches'):
        build_segmentor(dict(mode='whole', partial_patches='crop'))
    with pytest.raises(ValueError, match='no whole'):
        model.inference(torch.randn(1, 3, 3, 8), [dict(img_shape=(3, 8))])


def test_precision_on_cpu_runs_in_fp32():
    torch.manual_seed(4)
    image = torch.randn(1, 3, 24, 32)
    fp32 = build_segmentor().inference(image, [dict(img_shape=(24, 32))])[0]
    for precision in ('fp16', 'bf16'):
        model = build_segmentor(precision=precision)
        logits = model.inference(image, [dict(img_shape=(24, 32))])[0]
        assert logits.dtype == torch.float32
        torch.testing.assert_close(logits, fp32)
    with pytest.raises(ValueError, match='precision'):
        build_segmentor(precision='fp8')
