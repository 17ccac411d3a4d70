"""CAT-Seg building blocks against direct computations."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from torch import nn

import silc_seg  # noqa: F401
from silc_seg.models.layers.cat_seg_aggregator import (CATSegAggregator, cosine_cost_volume,
                                                       top_classes_by_cost)
from silc_seg.models.layers.cat_seg_class_attention import ClassAggregationLayer, linear_attention
from silc_seg.models.layers.cat_seg_swin_block import GuidedSwinBlock, GuidedSwinBlockPair
from silc_seg.models.layers.cat_seg_upsampler import GuidedUpsampleBlock
from silc_seg.models.losses import per_class_bce_loss
from silc_seg.registry import MODELS

init_default_scope('mmseg')


def test_cost_volume_is_cosine_similarity_per_class_and_template():
    torch.manual_seed(0)
    image, text = torch.randn(2, 8, 3, 5), torch.randn(4, 3, 8)
    cost = cosine_cost_volume(image, text)
    assert cost.shape == (2, 3, 4, 3, 5)
    b, p, t, y, x = 1, 2, 3, 2, 4
    expected = F.cosine_similarity(image[b, :, y, x], text[t, p], dim=0)
    assert torch.allclose(cost[b, p, t, y, x], expected, atol=1e-6)
    per_image = cosine_cost_volume(image, text.expand(2, -1, -1, -1))
    assert torch.allclose(cost, per_image)


def test_linear_attention_matches_its_definition():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 5, 2, 4), torch.randn(2, 7, 2, 4), torch.randn(2, 7, 2, 3)
    phi_q, phi_k = F.elu(q) + 1, F.elu(k) + 1
    weights = torch.einsum('nlhd,nshd->nlsh', phi_q, phi_k)
    expected = torch.einsum('nlsh,nshv->nlhv', weights / weights.sum(2, keepdim=True), v)
    assert torch.allclose(linear_attention(q, k, v), expected, atol=1e-5)


def test_swin_block_attends_within_windows_only():
    torch.manual_seed(0)
    block = GuidedSwinBlock(8, 4, num_heads=2, window_size=4, shift_size=0).eval()
    x, guidance = torch.randn(1, 8, 8, 8), torch.randn(1, 8, 8, 4)
    changed_x, changed_guidance = x.clone(), guidance.clone()
    changed_x[0, 1, 1] += torch.randn(8)
    changed_guidance[0, 2, 2] += torch.randn(4)
    for new_x, new_guidance in ((changed_x, guidance), (x, changed_guidance)):
        diff = (block(new_x, new_guidance) - block(x, guidance)).abs().sum(-1)[0]
        assert diff[:4, :4].min() > 0  # the whole top-left window sees the change
        outside = diff.clone()
        outside[:4, :4] = 0
        assert outside.max() < 1e-6


def test_shifted_swin_block_mixes_across_window_borders_but_not_across_the_wrap():
    torch.manual_seed(0)
    block = GuidedSwinBlock(8, 0, num_heads=2, window_size=4, shift_size=2).eval()
    x = torch.randn(1, 8, 8, 8)
    changed = x.clone()
    changed[0, 3, 3] += torch.randn(8)  # shifted window covers rows/cols 2..5
    diff = (block(changed, None) - block(x, None)).abs().sum(-1)[0]
    assert diff[2:6, 2:6].min() > 0
    outside = diff.clone()
    outside[2:6, 2:6] = 0
    assert outside.max() < 1e-6
    changed = x.clone()
    # the corner window holds wrapped-around regions that must stay apart
    changed[0, 0, 0] += torch.randn(8)
    diff = (block(changed, None) - block(x, None)).abs().sum(-1)[0]
    assert diff[0:2, 0:2].min() > 0
    assert diff[6:, 6:].max() < 1e-6 and diff[0:2, 6:].max() < 1e-6


def test_swin_pair_shapes_with_maps_that_do_not_tile_or_are_smaller_than_the_window():
    torch.manual_seed(0)
    pair = GuidedSwinBlockPair(8, 4, num_heads=2, window_size=4)
    for height, width in ((6, 10), (3, 3)):
        x, guidance = torch.randn(2, 8, 3, height, width), torch.randn(2, 4, height, width)
        assert pair(x, guidance).shape == x.shape


def test_class_aggregation_is_permutation_equivariant_and_padding_bounded():
    torch.manual_seed(0)
    layer = ClassAggregationLayer(8, 4, num_heads=2, pooling_size=(2, 2), num_class_slots=6)
    with torch.no_grad():  # non-zero padding tokens so that they matter
        layer.padding_token.normal_()
        layer.padding_guidance.normal_()
    x, guidance = torch.randn(2, 8, 5, 4, 6), torch.randn(2, 5, 4)
    out = layer(x, guidance)
    assert out.shape == x.shape
    order = torch.tensor([3, 0, 4, 1, 2])
    assert torch.allclose(layer(x[:, :, order], guidance[:, order]), out[:, :, order], atol=1e-5)
    with pytest.raises(ValueError, match='exceed num_class_slots'):
        layer(torch.randn(1, 8, 7, 4, 6), torch.randn(1, 7, 4))


def test_upsample_block_doubles_resolution_and_uses_guidance():
    torch.manual_seed(0)
    block = GuidedUpsampleBlock(32, 16, guidance_channels=8)
    x, guidance = torch.randn(6, 32, 5, 7), torch.randn(2, 8, 10, 14)
    out = block(x, guidance)
    assert out.shape == (6, 16, 10, 14)
    other = guidance.clone()
    other[1] += 1  # second image: classes 3..5 change, the first image's classes do not
    diff = (block(x, other) - out).abs().flatten(1).sum(1)
    assert diff[:3].max() == 0 and diff[3:].min() > 0
    with pytest.raises(ValueError, match='guidance is'):
        block(x, torch.randn(2, 8, 9, 14))


def test_upsample_convolutions_keep_pytorchs_default_init_and_mmcv_keys():
    """CAT-Seg's DoubleConv builds plain nn.Conv2d (kaiming-uniform with a=sqrt(5): |w| <=
    1/sqrt(fan_in), std = bound/sqrt(3)); mmcv's ConvModule would re-initialize them with
    Kaiming-normal (fan_out, ReLU), std sqrt(2/fan_out), also in a later init_weights()."""
    torch.manual_seed(0)
    block = GuidedUpsampleBlock(128, 64, guidance_channels=32)
    block.init_weights()
    for conv in (block.convs[0].conv, block.convs[1].conv):
        fan_in = conv.in_channels * 9
        bound = fan_in**-0.5
        weight = conv.weight.detach()
        assert weight.abs().max() <= bound
        assert float(weight.std()) == pytest.approx(bound / 3**0.5, rel=0.05)
    assert torch.equal(block.convs[0].gn.weight, torch.ones(64))
    keys = set(block.state_dict())
    assert {'convs.0.conv.weight', 'convs.0.gn.weight', 'convs.1.gn.bias'} <= keys


def tiny_aggregator(num_class_slots, num_templates=2):
    return CATSegAggregator(
        text_dims=16,
        num_templates=num_templates,
        embed_dims=32,
        appearance_guidance_dims=8,
        text_guidance_dims=8,
        decoder_dims=(32, 16),
        decoder_guidance_dims=(8, 4),
        decoder_guidance_proj_dims=(8, 4),
        num_layers=1,
        num_heads=2,
        pooling_size=(2, 2),
        window_size=4,
        num_class_slots=num_class_slots).eval()


def test_aggregator_output_shape():
    torch.manual_seed(0)
    aggregator = tiny_aggregator(num_class_slots=8)
    image, text = torch.randn(2, 16, 6, 6), torch.randn(5, 2, 16)
    guidance = [torch.randn(2, 8, 12, 12), torch.randn(2, 4, 24, 24)]
    assert aggregator(image, text, guidance).shape == (2, 5, 24, 24)
    with pytest.raises(ValueError, match='prompt templates'):
        aggregator(image, torch.randn(5, 3, 16), guidance)


@pytest.mark.parametrize('num_class_slots,num_classes', [(8, 30), (256, 300)])
def test_top_classes_kept_and_dropped_classes_scattered_low(num_class_slots, num_classes):
    torch.manual_seed(0)
    aggregator = tiny_aggregator(num_class_slots=num_class_slots)
    image, text = torch.randn(2, 16, 4, 4), torch.randn(num_classes, 2, 16)
    guidance = [torch.randn(2, 8, 8, 8), torch.randn(2, 4, 16, 16)]
    with torch.no_grad():
        logits = aggregator(image, text, guidance)
    assert logits.shape == (2, num_classes, 16, 16)
    max_cost = cosine_cost_volume(image, text).amax(dim=(1, 3, 4))  # (B, T)
    for b in range(2):
        kept = max_cost[b].argsort(descending=True)[:num_class_slots].sort().values
        dropped = torch.ones(num_classes, dtype=torch.bool)
        dropped[kept] = False
        assert (logits[b, dropped] == aggregator.dropped_class_logit).all()
        assert (logits[b, kept] > aggregator.dropped_class_logit).all()
        # the kept logits are those of running on the kept classes alone
        with torch.no_grad():
            alone = aggregator(image[b:b + 1], text[kept], [g[b:b + 1] for g in guidance])
        assert torch.allclose(logits[b, kept], alone[0], atol=1e-4)
    assert torch.equal(
        top_classes_by_cost(cosine_cost_volume(image, text), 3),
        max_cost.topk(3).indices.sort().values)


def tiny_head(**overrides):
    return MODELS.build(
        dict(
            type='CATSegHead',
            vision_width=16,
            guidance_upsample_dims=(8, 4),
            aggregator=dict(
                text_dims=16,
                num_templates=1,
                embed_dims=32,
                decoder_dims=(32, 16),
                decoder_guidance_dims=(8, 4),
                decoder_guidance_proj_dims=(8, 4),
                window_size=4,
                num_class_slots=8),
            **overrides))


def test_default_loss_keeps_ignored_pixels_as_all_negative_targets():
    """CAT-Seg's loss (cat_seg/cat_seg_model.py, CATSeg.forward) written out: logits resized to
    the labels, channels last, zero targets everywhere, one-hot rows at the non-ignored pixels,
    BCE with logits averaged over every element."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    torch.manual_seed(0)
    head = tiny_head()
    logits = torch.randn(2, 5, 8, 8)
    labels = torch.randint(0, 5, (2, 1, 16, 16))
    labels[0, 0, :4] = 255
    samples = [SegDataSample(gt_sem_seg=PixelData(data=label)) for label in labels]
    losses = head.loss_by_feat(logits, samples)
    outputs = F.interpolate(logits, size=(16, 16), mode='bilinear', align_corners=False)
    targets = labels[:, 0]
    mask = targets != 255
    outputs = outputs.permute(0, 2, 3, 1)
    dense_targets = torch.zeros(outputs.shape)
    dense_targets[mask] = F.one_hot(targets[mask], num_classes=5).float()
    expected = F.binary_cross_entropy_with_logits(outputs, dense_targets)
    assert torch.allclose(losses['loss_ce'], expected, atol=1e-6)
    # ignored pixels count: the same logits with the ignored pixels dropped give another value
    excluded = F.binary_cross_entropy_with_logits(outputs[mask], dense_targets[mask])
    assert not torch.allclose(losses['loss_ce'], excluded, atol=1e-4)
    with pytest.raises(ValueError, match='expected'):
        per_class_bce_loss(logits, labels)
    with pytest.raises(ValueError, match="start with 'loss_'"):
        MODELS.build(dict(type='PerClassBCELoss', loss_name='bce'))


def test_bce_loss_excluding_ignored_pixels_is_an_option():
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    torch.manual_seed(0)
    head = tiny_head(
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True, loss_weight=1.0))
    logits = torch.randn(2, 5, 8, 8)
    labels = torch.randint(0, 5, (2, 1, 16, 16))
    labels[0, 0, :4] = 255
    samples = [SegDataSample(gt_sem_seg=PixelData(data=label)) for label in labels]
    losses = head.loss_by_feat(logits, samples)
    upsampled = F.interpolate(logits, size=(16, 16), mode='bilinear', align_corners=False)
    valid = labels[:, 0] != 255
    targets = F.one_hot(labels[:, 0].clamp(max=4), 5).permute(0, 3, 1, 2).float()
    per_element = F.binary_cross_entropy_with_logits(upsampled, targets, reduction='none')
    expected = per_element.permute(0, 2, 3, 1)[valid].mean()
    assert torch.allclose(losses['loss_ce'], expected, atol=1e-6)
    assert losses['loss_ce'].item() == pytest.approx(expected.item(), rel=1e-6)
    labels[1, 0, 0, 0] = 7
    with pytest.raises(ValueError, match='training classes'):
        head.loss_by_feat(logits, [SegDataSample(gt_sem_seg=PixelData(data=lb)) for lb in labels])


def test_head_checks_guidance_configuration():
    with pytest.raises(ValueError, match='guidance_upsample_dims'):
        MODELS.build(dict(type='CATSegHead', guidance_upsample_dims=(8, 4)))
    assert isinstance(
        MODELS.build(dict(type='CATSegHead')).guidance_upsamplers[1], nn.ConvTranspose2d)


def reference_guided_swin_block(block, x, guidance, window, shift):
    """CAT-Seg's SwinTransformerBlock.forward (official code, modified timm Swin), written out
    with this block's weights: roll the concatenated input, partition, masked guided attention
    (q/k from input + guidance, v from the input), merge, roll back, residual + MLP."""
    batch, height, width, channels = x.shape
    shortcut = x
    x = torch.cat([block.norm1(x), guidance], dim=-1)
    if shift:
        x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
    windows = x.view(batch, height // window, window, width // window, window, -1)
    windows = windows.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, x.shape[-1])
    mask = None
    if shift:
        img_mask = torch.zeros((1, height, width, 1))
        count = 0
        for h in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            for w in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
                img_mask[:, h, w, :] = count
                count += 1
        mask_windows = img_mask.view(1, height // window, window, width // window, window, 1)
        mask_windows = mask_windows.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window)
        mask = mask_windows.unsqueeze(1) - mask_windows.unsqueeze(2)
        mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
    attn_module = block.attn
    heads = attn_module.num_heads
    num, length, _ = windows.shape
    q = attn_module.q(windows).reshape(num, length, heads, -1).permute(0, 2, 1, 3)
    k = attn_module.k(windows).reshape(num, length, heads, -1).permute(0, 2, 1, 3)
    v = attn_module.v(windows[:, :, :channels]).reshape(num, length, heads, -1).permute(0, 2, 1, 3)
    attn = (q * attn_module.scale) @ k.transpose(-2, -1)
    if mask is not None:
        num_windows = mask.shape[0]
        attn = attn.view(num // num_windows, num_windows, heads, length, length)
        attn = (attn + mask.unsqueeze(1).unsqueeze(0)).view(-1, heads, length, length)
    out = attn_module.proj((attn.softmax(-1) @ v).transpose(1, 2).reshape(num, length, -1))
    out = out.view(-1, height // window, width // window, window, window, channels)
    out = out.permute(0, 1, 3, 2, 4, 5).reshape(batch, height, width, channels)
    if shift:
        out = torch.roll(out, shifts=(shift, shift), dims=(1, 2))
    x = shortcut + out
    return x + block.ffn(block.norm2(x))


@pytest.mark.parametrize('shift', [0, 3])
def test_guided_swin_block_matches_cat_seg_reference_forward(shift):
    torch.manual_seed(0)
    block = GuidedSwinBlock(16, 8, num_heads=4, window_size=6, shift_size=shift).eval()
    x, guidance = torch.randn(2, 12, 12, 16), torch.randn(2, 12, 12, 8)
    with torch.no_grad():
        expected = reference_guided_swin_block(block, x, guidance, 6, shift)
        assert torch.allclose(block(x, guidance), expected, atol=1e-5)


def reference_class_transformer_layer(layer, x, guidance):
    """CAT-Seg's ClassTransformerLayer.forward (official code) with this layer's weights: pool,
    pad the class axis to pad_len with the learnable token, (B H W) T C tokens, guided linear
    attention + MLP (pre-norm, residual), back to maps, bilinear upsampling, drop the padding,
    residual."""
    batch, channels, num_classes, height, width = x.shape
    pooled = layer.pool(x.transpose(1, 2).reshape(batch * num_classes, channels, height, width))
    pooled_h, pooled_w = pooled.shape[-2:]
    pooled = pooled.view(batch, num_classes, channels, pooled_h, pooled_w).transpose(1, 2)
    pad = layer.num_class_slots - num_classes
    padding = layer.padding_token.view(1, channels, 1, 1, 1).expand(batch, -1, pad, pooled_h,
                                                                    pooled_w)
    pooled = torch.cat([pooled, padding], dim=2)  # B C T' h w
    tokens = pooled.permute(0, 3, 4, 2, 1).reshape(batch * pooled_h * pooled_w,
                                                   layer.num_class_slots, channels)
    guidance = torch.cat([guidance, layer.padding_guidance.expand(batch, pad, -1)], dim=1)
    guidance = guidance[:, None, None].expand(-1, pooled_h, pooled_w, -1,
                                              -1).reshape(batch * pooled_h * pooled_w,
                                                          layer.num_class_slots, -1)
    attention = layer.attention
    normed = layer.norm1(tokens)
    q = attention.q(torch.cat([normed, guidance], -1))
    k = attention.k(torch.cat([normed, guidance], -1))
    v = attention.v(normed)
    shape = (tokens.shape[0], tokens.shape[1], attention.num_heads, -1)
    tokens = tokens + linear_attention(q.view(shape), k.view(shape), v.view(shape)).reshape(
        tokens.shape)
    tokens = tokens + layer.mlp(layer.norm2(tokens))
    maps = tokens.view(batch, pooled_h, pooled_w, layer.num_class_slots, channels)
    maps = maps.permute(0, 3, 4, 1, 2).reshape(-1, channels, pooled_h, pooled_w)
    maps = F.interpolate(maps, size=(height, width), mode='bilinear', align_corners=True)
    maps = maps.view(batch, layer.num_class_slots, channels, height, width).transpose(1, 2)
    return x + maps[:, :, :num_classes]


def test_class_aggregation_matches_cat_seg_reference_forward():
    torch.manual_seed(0)
    layer = ClassAggregationLayer(8, 4, num_heads=2, pooling_size=(2, 2), num_class_slots=6)
    with torch.no_grad():
        layer.padding_token.normal_()
        layer.padding_guidance.normal_()
        x, guidance = torch.randn(2, 8, 5, 4, 6), torch.randn(2, 5, 4)
        assert torch.allclose(
            layer(x, guidance), reference_class_transformer_layer(layer, x, guidance), atol=1e-5)
