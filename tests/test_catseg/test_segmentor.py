"""CATSeg segmentor: shapes, vocabularies, CAT-Seg's sliding-window + global-view inference."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmseg.structures import SegDataSample

import silc_seg  # noqa: F401
from silc_seg.models.segmentors.cat_seg import default_guidance_layers
from silc_seg.registry import MODELS
from .tiny_towers import tiny_catseg_cfg

init_default_scope('mmseg')

SLIDE = dict(mode='slide', out_size=(64, 64), crop_size=(32, 32), stride=(16, 16))


def build(**overrides):
    torch.manual_seed(0)
    return MODELS.build(tiny_catseg_cfg(**overrides)).eval()


@pytest.mark.slow
def test_shapes_from_towers_to_logits():
    model = build(class_names=['sky', 'grass', 'person'])
    images = torch.randn(2, 3, 48, 40)  # resized to the 32 x 32 tower input
    features = model.extract_feat(images)
    assert features['dense'].shape == (2, 16, 8, 8)
    assert [f.shape for f in features['intermediates']] == [(2, 32, 8, 8)] * 2
    text = model.test_text_features()
    assert text.shape == (3, 1, 16)
    assert torch.allclose(text.norm(dim=-1), torch.ones(3, 1))
    assert model._forward(images).shape == (2, 3, 32, 32)
    assert model.encode_decode(images, [{}] * 2).shape == (2, 3, 48, 40)


def test_first_name_rule_is_the_default_and_embeds_only_the_first_name():
    """CAT-Seg's CATSegPredictor.get_text_embeds (cvlab-kaist/CAT-Seg commit b0e9438b,
    cat_seg/modeling/transformer/cat_seg_predictor.py) formats the templates with
    ``classname.split(', ')[0]``."""
    model = build()
    assert model.text_classifier.name_rule == 'first'
    with torch.no_grad():
        alone = model.encode_vocabulary([['dog'], ['cat']])
        with_synonyms = model.encode_vocabulary([['dog', 'puppy', 'hound'], ['cat', 'kitten']])
        other_first = model.encode_vocabulary([['puppy', 'dog'], ['cat']])
        prompts = model.tokenizer(['a photo of a dog.', 'a photo of a cat.'])
        direct = F.normalize(model.text_encoder(prompts), dim=-1)[:, None]
    assert torch.equal(with_synonyms, alone)
    assert torch.allclose(alone, direct, atol=1e-6)
    assert not torch.allclose(other_first[0], alone[0], atol=1e-3)
    model.set_vocabulary(['dog, puppy', 'cat'])  # class-name file syntax
    assert torch.allclose(model.test_text_features(), alone, atol=1e-6)
    with pytest.raises(ValueError, match='name_rule'):
        build(name_rule='mean')


def test_synonyms_are_averaged_per_template():
    cfg = tiny_catseg_cfg(templates=('a photo of a {}.', 'a {} in the scene'), name_rule='average')
    torch.manual_seed(0)
    model = MODELS.build(cfg).eval()
    with torch.no_grad():
        single = model.encode_vocabulary([['cat'], ['dog'], ['puppy']])
        merged = model.encode_vocabulary([['cat'], ['dog', 'puppy']])
    assert merged.shape == (2, 2, 16)
    assert torch.allclose(merged[0], single[0], atol=1e-6)
    assert torch.allclose(merged[1], F.normalize(single[1] + single[2], dim=-1), atol=1e-6)


def test_configuration_errors_are_explicit():
    cfg = tiny_catseg_cfg()
    cfg['templates'] = ['a {}', 'the {}']
    cfg['decode_head']['aggregator']['num_templates'] = 1  # configured against the templates
    with pytest.raises(ValueError, match='num_templates=1 does not match the number of templ'):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match='guidance_layers'):
        build(guidance_layers=(1, ))
    with pytest.raises(ValueError, match='dense_variant'):
        build(dense_variant='cat-seg')
    with pytest.raises(ValueError, match='tile out_size'):
        build(test_cfg=dict(mode='slide', out_size=(60, 60), crop_size=(32, 32), stride=16))
    model = build()
    with pytest.raises(RuntimeError, match='no test class names'):
        model.predict(torch.randn(1, 3, 32, 32))
    with pytest.raises(RuntimeError, match='train_class_names'):
        model.loss(torch.randn(1, 3, 32, 32), [])
    model = build(class_names=['a', 'b'])
    with pytest.raises(ValueError, match='lists 2 classes but the dataset has 3'):
        model.dataset_meta = dict(classes=('x', 'y', 'z'))


def naive_slide_scores(model, image, text):
    """CAT-Seg's inference written as an explicit loop over windows."""
    out_h, out_w = SLIDE['out_size']
    crop, stride = SLIDE['crop_size'][0], SLIDE['stride'][0]
    resized = F.interpolate(image[None], size=(out_h, out_w), mode='bilinear', align_corners=False)
    total = torch.zeros(text.shape[0], out_h, out_w)
    count = torch.zeros(1, out_h, out_w)
    for y in range(0, out_h - crop + 1, stride):
        for x in range(0, out_w - crop + 1, stride):
            logits = model.class_logits(resized[..., y:y + crop, x:x + crop], text)
            total[:, y:y + crop, x:x + crop] += logits[0].sigmoid()
            count[:, y:y + crop, x:x + crop] += 1
    global_view = F.interpolate(
        image[None], size=(crop, crop), mode='bilinear', align_corners=False)
    global_scores = F.interpolate(
        model.class_logits(global_view, text).sigmoid(),
        size=(out_h, out_w),
        mode='bilinear',
        align_corners=False)
    # At out_size: CAT-Seg resizes this once, to the original size (sem_seg_postprocess).
    return (total / count + global_scores[0]) / 2


@pytest.mark.slow
def test_sliding_window_with_global_view_matches_a_naive_loop():
    model = build(class_names=['sky', 'grass', 'person', 'car'], test_cfg=SLIDE)
    torch.manual_seed(1)
    image = torch.randn(3, 50, 70)
    sample = SegDataSample(metainfo=dict(img_shape=(50, 70), ori_shape=(100, 140)))
    with torch.no_grad():
        result = model.predict(image[None], [sample])[0]
        expected = naive_slide_scores(model, image, model.test_text_features())
    expected = F.interpolate(
        expected[None], size=(100, 140), mode='bilinear', align_corners=False)[0]
    assert result.seg_logits.data.shape == (4, 100, 140)
    assert torch.allclose(result.seg_logits.data, expected, atol=1e-5)
    assert torch.equal(result.pred_sem_seg.data, expected.argmax(0, keepdim=True))


@pytest.mark.slow
def test_whole_image_sigmoid_scores_are_resized_once_to_the_original_size():
    """CAT-Seg's non-sliding inference: sigmoid of the head's output, then one bilinear resize
    to the original size (detectron2's sem_seg_postprocess)."""
    model = build(class_names=['sky', 'grass', 'person'], test_cfg=dict(mode='whole'))
    torch.manual_seed(2)
    image = torch.randn(3, 50, 70)
    sample = SegDataSample(metainfo=dict(img_shape=(50, 70), ori_shape=(75, 105)))
    with torch.no_grad():
        result = model.predict(image[None], [sample])[0]
        scores = model.class_logits(image[None], model.test_text_features()).sigmoid()
    expected = F.interpolate(scores, size=(75, 105), mode='bilinear', align_corners=False)[0]
    torch.testing.assert_close(result.seg_logits.data, expected, atol=1e-6, rtol=1e-6)


@pytest.mark.slow
def test_padded_batch_is_cropped_to_each_image_and_flip_is_undone():
    model = build(class_names=['sky', 'grass', 'person'])
    torch.manual_seed(1)
    image = torch.randn(3, 30, 40)
    padded = F.pad(image, (0, 8, 0, 10))[None]
    with torch.no_grad():
        alone = model.predict(image[None])[0].seg_logits.data
        cropped = model.predict(
            padded, [SegDataSample(metainfo=dict(img_shape=(30, 40), ori_shape=(30, 40)))])
        flipped = model.predict(
            image.flip(-1)[None], [
                SegDataSample(
                    metainfo=dict(
                        img_shape=(30, 40),
                        ori_shape=(30, 40),
                        flip=True,
                        flip_direction='horizontal'))
            ])
    assert torch.allclose(cropped[0].seg_logits.data, alone, atol=1e-6)
    assert flipped[0].seg_logits.data.shape == alone.shape


@pytest.mark.slow
def test_many_classes_run_in_bounded_class_slots_with_the_default_top_256():
    cfg = tiny_catseg_cfg(class_names=[f'class number {i}' for i in range(300)])
    cfg['decode_head']['aggregator']['num_class_slots'] = 256
    torch.manual_seed(0)
    model = MODELS.build(cfg).eval()
    with torch.no_grad():
        result = model.predict(torch.randn(1, 3, 32, 32))[0]
    scores = result.seg_logits.data
    assert scores.shape == (300, 32, 32)
    dropped = (scores < 1e-30).all(dim=(1, 2))  # sigmoid(-100)
    assert int(dropped.sum()) == 300 - 256


def test_text_cache_follows_the_vocabulary_and_the_weights():
    model = build(class_names=['sky', 'grass'])
    first = model.test_text_features()
    assert model.test_text_features() is first
    model.set_vocabulary(['sky', 'grass', 'road'])
    assert model.test_text_features().shape[0] == 3
    cached = model.test_text_features()
    with torch.no_grad():
        model.text_encoder.positional_embedding.add_(torch.randn(16, 32))
    assert not torch.allclose(model.test_text_features(), cached)


@pytest.mark.slow
def test_sizes_follow_the_towers_and_configured_ones_are_checked():
    """Another image tower needs no coupled head overrides: vision width, text dims, template
    count, guidance layers and image size follow from it; a contradicting value is an error
    that names the key, not a shape error deep in the forward."""
    from .tiny_towers import tiny_image_encoder, tiny_text_encoder
    wide = tiny_catseg_cfg(
        image_encoder=tiny_image_encoder(
            arch=dict(width=48, depth=6, num_heads=2, patch_size=4, mlp_ratio=2.0),
            output_dim=24,
            img_size=48),
        text_encoder=tiny_text_encoder(output_dim=24),
        templates=('a photo of a {}.', 'a {} in the scene'),
        class_names=['sky', 'grass'])
    torch.manual_seed(0)
    model = MODELS.build(wide).eval()
    assert model.decode_head.guidance_upsamplers[0].in_channels == 48
    assert model.decode_head.aggregator.num_templates == 2
    assert model.guidance_layers == (1, 3)  # 6 blocks: the ends of the first third and two
    assert model.image_size == (48, 48)
    with torch.no_grad():
        assert model.predict(torch.randn(1, 3, 40, 56))[0].seg_logits.data.shape == (2, 40, 56)
    # CAT-Seg's own choices for ViT-B/16 (12 blocks) and ViT-L/14 (24 blocks)
    assert default_guidance_layers(12, 2) == (3, 7)
    assert default_guidance_layers(24, 2) == (7, 15)
    mismatched = tiny_catseg_cfg()
    mismatched['decode_head']['vision_width'] = 768
    with pytest.raises(ValueError, match=r'decode_head.vision_width=768 .* image tower width'):
        MODELS.build(mismatched)
    mismatched = tiny_catseg_cfg()
    mismatched['decode_head']['aggregator']['text_dims'] = 512
    with pytest.raises(ValueError, match='decode_head.aggregator.text_dims=512'):
        MODELS.build(mismatched)
    with pytest.raises(ValueError, match='same output_dim'):
        MODELS.build(tiny_catseg_cfg(text_encoder=tiny_text_encoder(output_dim=24)))


def test_dense_variant_selects_the_last_block_of_the_cost_volume():
    """CAT-Seg's dense path by default; the ordinary last block ('plain', our earlier path) stays
    selectable. Guidance maps come from earlier blocks and do not change."""
    images = torch.randn(1, 3, 32, 32)
    default, plain = build(), build(dense_variant='plain')
    assert default.dense_variant == 'catseg'
    with torch.no_grad():
        got = default.extract_feat(images)
        got_plain = plain.extract_feat(images)
        expected = default.image_encoder.encode_dense(
            images, variant='catseg', return_intermediates=(0, 1))
        expected_plain = default.image_encoder.encode_dense(
            images, variant='plain', return_intermediates=(0, 1))
    assert default.guidance_layers == plain.guidance_layers == (0, 1)
    assert torch.equal(got['dense'], expected['dense'])
    assert torch.equal(got_plain['dense'], expected_plain['dense'])
    assert not torch.allclose(got['dense'], got_plain['dense'], atol=1e-3)
    for a, b in zip(got['intermediates'], got_plain['intermediates']):
        assert torch.equal(a, b)
