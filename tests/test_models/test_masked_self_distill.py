"""Masked self-distillation (MaskCLIP of Dong et al., CVPR 2023; not Zhou et al.'s training-free
MaskCLIP): masks, teacher, the loss equations written out, masked language modelling."""
import math

import pytest
import torch

from silc_seg.models.losses import masked_lm_loss, masked_patch_distill_loss
from silc_seg.models.utils.masking import block_patch_mask, random_patch_mask, text_token_mask
from silc_seg.registry import MODELS
from tests.test_models.test_silc import BATCH, CONTEXT, EMBED_DIM, VOCAB, batch, model_cfg

MASK_PROTOS = 20
EOT, SOT = VOCAB - 1, VOCAB - 2
# The masked-patch prediction of the tiny models (also the SigLIP 2 recipe's, test_siglip2.py).
MASKED_PREDICTION = dict(
    masked_head=dict(
        type='DistillationHead',
        in_channels=EMBED_DIM,
        out_channels=MASK_PROTOS,
        hidden_channels=32,
        bottleneck_channels=8),
    masked_distill_loss=dict(
        type='MaskedPatchDistillLoss', out_channels=MASK_PROTOS, teacher_temp=0.05),
    image_mask_ratio=0.5,
    mask_seed=3)


class IdTokenizer:
    """Only the special ids the MLM branch reads from a tokenizer."""
    sot_token_id = SOT
    eot_token_id = EOT


def masked_cfg(distill=False, mlm=True, **kwargs):
    cfg = model_cfg(
        distill,
        type='MaskedSelfDistill',
        tokenizer=IdTokenizer(),
        image_decoder=dict(
            type='MaskedTokenDecoder',
            in_channels=32,
            out_channels=EMBED_DIM,
            embed_dims=16,
            depth=1,
            num_heads=2),
        **MASKED_PREDICTION)
    if mlm:
        cfg['text_decoder'] = dict(
            type='MaskedTokenDecoder',
            in_channels=32,
            out_channels=32,
            embed_dims=16,
            depth=1,
            num_heads=2)
    cfg.update(kwargs)
    return cfg


def build_masked(**kwargs):
    torch.manual_seed(0)
    model = MODELS.build(masked_cfg(**kwargs))
    model.init_weights()
    return model.train()


def captioned_batch(seed=1):
    """Captions SOT w1 .. wn EOT 0 0 with n = 2..6 content tokens."""
    data = batch(seed)
    generator = torch.Generator().manual_seed(seed)
    text = torch.zeros(BATCH, CONTEXT, dtype=torch.long)
    for row in range(BATCH):
        n = 2 + row * 2
        words = torch.randint(1, VOCAB - 2, (n, ), generator=generator)
        text[row, :n + 2] = torch.cat([torch.tensor([SOT]), words, torch.tensor([EOT])])
    data['text'] = text
    return data


# ------------------------------------------------------------------------------------------
# Masks
@pytest.mark.slow
@pytest.mark.parametrize('strategy', ['random', 'block'])
def test_image_masks_cover_the_configured_ratio(strategy):
    model = build_masked(image_mask_ratio=0.4, image_mask_strategy=strategy)
    generator = torch.Generator().manual_seed(0)
    masks = model.sample_image_mask(400, (8, 8), generator)
    assert masks.dtype == torch.bool and masks.shape == (400, 64)
    # Exactly round(0.4 * 64) = 26 per image, whatever the strategy.
    assert (masks.sum(dim=1) == 26).all()
    frequency = masks.float().mean(dim=0)
    if strategy == 'random':
        # Every position is masked about 40% of the time (no position favoured).
        assert frequency.min() > 0.25 and frequency.max() < 0.55
    else:
        # Rectangles cover the border less often than the middle (as BEiT's), but reach it.
        assert frequency.min() > 0.05 and frequency.view(8, 8)[3:5, 3:5].min() > 0.4
    # Blocks: a masked patch's right neighbour is masked far more often than at random
    # (0.4 * 25/63 for independent positions).
    grid = masks.view(-1, 8, 8)
    both = (grid[:, :, :-1] & grid[:, :, 1:]).sum() / grid[:, :, :-1].sum()
    random_level = 25 / 63
    if strategy == 'block':
        assert both > random_level + 0.15
        # the configured strategy is the one drawn
        generator = torch.Generator().manual_seed(0)
        assert torch.equal(masks, block_patch_mask(400, (8, 8), 0.4, generator))
    else:
        assert abs(both - random_level) < 0.05
        generator = torch.Generator().manual_seed(0)
        assert torch.equal(masks, random_patch_mask(400, 64, 0.4, generator))


def test_text_masks_only_content_tokens_at_the_configured_ratio():
    data = captioned_batch()
    text = data['text']
    masks = torch.stack([
        text_token_mask(text, 0.34, EOT, (SOT, ),
                        torch.Generator().manual_seed(s)) for s in range(200)
    ])
    content = (text != SOT) & (text != EOT) & (text != 0)
    assert not (masks & ~content).any()  # never SOT, EOT or padding
    for row in range(BATCH):
        n = int(content[row].sum())
        assert (masks[:, row].sum(dim=1) == max(1, round(0.34 * n))).all()
    # Every content position gets masked sometimes.
    assert (masks.any(dim=0) == content).all()
    with pytest.raises(ValueError, match='ratio'):
        text_token_mask(text, 0.0, EOT)


def test_bad_settings_raise():
    with pytest.raises(ValueError, match='strategy'):
        build_masked(image_mask_strategy='grid')
    with pytest.raises(ValueError, match='image_mask_ratio'):
        build_masked(image_mask_ratio=1.0)
    with pytest.raises(ValueError, match='width'):
        build_masked(text_decoder=dict(type='MaskedTokenDecoder', in_channels=32, out_channels=16))
    with pytest.raises(ValueError, match='end-of-text'):
        build_masked(tokenizer=None)


# ------------------------------------------------------------------------------------------
# Teacher
@pytest.mark.slow
@pytest.mark.parametrize('distill', [False, True])
def test_teacher_sees_the_unmasked_image_and_takes_no_gradient(distill, monkeypatch):
    model = build_masked(distill=distill)
    data = captioned_batch()
    teacher = model.teacher_image_encoder
    seen = []
    original = teacher.forward_tokens

    def spy(images, patch_mask=None, mask_token=None):
        seen.append((images.clone(), patch_mask))
        return original(images, patch_mask, mask_token)

    monkeypatch.setattr(teacher, 'forward_tokens', spy)
    losses = model(data, mode='loss')
    # One teacher pass over the global crops serves SILC's targets and the masked branch's.
    assert len(seen) == 1
    assert all(torch.equal(images, data['global_crops']) and mask is None for images, mask in seen)
    expected = {
        'loss_contrastive', 'loss_mask_distill', 'loss_mlm', 'logit_scale', 'mask_center_norm'
    }
    if distill:
        expected |= {'loss_distill', 'teacher_temp', 'center_norm'}
    assert expected <= set(losses)
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    assert all(not p.requires_grad and p.grad is None for p in model.teacher_parameters())
    names = {n for n, _ in model.named_parameters()}
    teacher_names = {n for n in names if n.startswith('teacher_')}
    assert teacher_names >= {n for n in names if n.startswith('teacher_image_encoder.')}
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    pairs = model.student_teacher_pairs()
    assert (model.masked_head, model.teacher_masked_head) in pairs
    assert pairs[0] == (model.image_encoder, model.teacher_image_encoder)
    assert not model.teacher_image_encoder.training and not model.teacher_masked_head.training


def test_masked_patches_are_invisible_to_the_student():
    """The mask token replaces the patch embedding: the content of masked patches cannot
    change the student's output."""
    model = build_masked().eval()
    images = batch()['global_crops'][:2]
    generator = torch.Generator().manual_seed(0)
    mask = model.sample_image_mask(2, (4, 4), generator)
    changed = images.clone()
    pixel_mask = mask.view(2, 4, 4).repeat_interleave(8, 1).repeat_interleave(8, 2)
    changed[pixel_mask.unsqueeze(1).expand_as(changed)] = 5.0
    encoder = model.image_encoder
    with torch.no_grad():
        a = encoder.forward_tokens(images, mask, model.image_mask_token)
        b = encoder.forward_tokens(changed, mask, model.image_mask_token)
        c = encoder.forward_tokens(changed)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


# ------------------------------------------------------------------------------------------
# Loss equations, written out
def vit_tokens(encoder, images, mask=None, mask_token=None):
    """Embedding (mask token in place of masked patch embeddings) and blocks, by hand."""
    patches = encoder.patch_embed.projection(images).flatten(2).transpose(1, 2)
    if mask is not None:
        patches = torch.where(mask[..., None], mask_token.expand_as(patches), patches)
    x = torch.cat([encoder.cls_token.expand(len(images), -1, -1), patches], 1)
    x = x + encoder.pos_embed
    for block in encoder.blocks:
        x = block(x)
    return x


def test_losses_equal_the_equations():
    model = build_masked(masked_distill_weight=0.7, mlm_weight=0.3, contrastive_weight=0.0)
    data = captioned_batch()
    model.masked_distill_loss.center.normal_(0, 0.1)
    center = model.masked_distill_loss.center.clone()
    step = int(model.mask_step)
    losses = model(data, mode='loss')
    assert int(model.mask_step) == step + 1

    # The same masks: the generator is seeded from (mask_seed, mask_step, rank).
    generator = torch.Generator().manual_seed(3 * 1_000_003 + step)
    images = data['global_crops']
    image_mask = random_patch_mask(len(images), 16, 0.5, generator)
    content = (data['text'] != SOT) & (data['text'] != EOT) & (data['text'] != 0)
    text_mask = text_token_mask(data['text'], 0.15, EOT, (SOT, ), generator)
    assert (text_mask.sum(1) == content.sum(1).mul(0.15).round().clamp(min=1)).all()

    with torch.no_grad():
        teacher = model.teacher_image_encoder
        t_tokens = vit_tokens(teacher, images)[:, 1:]
        t_logits = model.teacher_masked_head(teacher.proj(teacher.ln_post(t_tokens)))
        student = model.image_encoder
        s_tokens = vit_tokens(student, images, image_mask, model.image_mask_token)
        decoded = model.image_decoder(student.ln_post(s_tokens))[:, 1:]
        s_logits = model.masked_head(decoded)
        # p = softmax((t - c) / tau_t), q = softmax(s / tau_s), loss = mean over masked of
        # -sum_k p log q.
        p = torch.softmax((t_logits - center) / 0.05, dim=-1)
        log_q = torch.log_softmax(s_logits / 0.1, dim=-1)
        per_patch = -(p * log_q).sum(-1)
        expected = (per_patch * image_mask).sum() / image_mask.sum()
        torch.testing.assert_close(losses['loss_mask_distill'], 0.7 * expected)
        # center <- m c + (1 - m) mean over every patch of every image of t
        new_center = 0.9 * center + 0.1 * t_logits.mean(dim=(0, 1))
        torch.testing.assert_close(model.masked_distill_loss.center, new_center)

        # MLM: masked tokens embedded as the mask embedding; tied output layer plus bias;
        # cross-entropy at the masked positions only.
        text_encoder = model.text_encoder
        ids = data['text']
        x = text_encoder.token_embedding(ids)
        x = torch.where(text_mask[..., None], model.text_mask_embedding.expand_as(x), x)
        x = x + text_encoder.positional_embedding
        for block in text_encoder.blocks:
            x = block(x, is_causal=True)
        features = model.text_decoder(text_encoder.ln_final(x))
        logits = features @ text_encoder.token_embedding.weight.T + model.mlm_bias
        log_probs = torch.log_softmax(logits, dim=-1)
        nll = -log_probs.gather(-1, ids[..., None]).squeeze(-1)
        expected_mlm = (nll * text_mask).sum() / text_mask.sum()
        torch.testing.assert_close(losses['loss_mlm'], 0.3 * expected_mlm)


def test_masked_patch_distill_loss_is_cross_entropy():
    generator = torch.Generator().manual_seed(0)
    student = torch.randn(7, 5, generator=generator, dtype=torch.float64)
    teacher = torch.softmax(torch.randn(7, 5, generator=generator, dtype=torch.float64), -1)
    expected = sum(-sum(teacher[m, k] * math.log(
        math.exp(student[m, k] / 0.2) / sum(math.exp(v / 0.2) for v in student[m].tolist()))
                        for k in range(5)) for m in range(7)) / 7
    assert masked_patch_distill_loss(student, teacher, 0.2).item() == pytest.approx(expected)


def test_mlm_loss_counts_only_masked_positions():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(2, 5, 4, generator=generator, dtype=torch.float64)
    weight = torch.randn(9, 4, generator=generator, dtype=torch.float64)
    bias = torch.randn(9, generator=generator, dtype=torch.float64)
    ids = torch.randint(0, 9, (2, 5), generator=generator)
    mask = torch.tensor([[0, 1, 0, 0, 1], [0, 0, 1, 0, 0]], dtype=torch.bool)
    poisoned = features.clone()
    poisoned[~mask] = float('nan')  # unmasked positions must not enter
    loss = masked_lm_loss(poisoned, ids, mask, weight, bias)
    terms = []
    for n, l in mask.nonzero().tolist():
        logits = [float(features[n, l] @ weight[v] + bias[v]) for v in range(9)]
        log_z = math.log(sum(math.exp(v) for v in logits))
        terms.append(log_z - logits[int(ids[n, l])])
    assert loss.item() == pytest.approx(sum(terms) / len(terms))
    # Changing the targets of unmasked positions changes nothing.
    other = ids.clone()
    other[~mask] = (other[~mask] + 1) % 9
    assert masked_lm_loss(features, other, mask, weight,
                          bias).item() == pytest.approx(sum(terms) / len(terms))


@pytest.mark.slow
def test_masks_follow_the_step_counter():
    model = build_masked()
    data = captioned_batch()
    seen = []
    original = model.sample_image_mask

    def spy(*args, **kwargs):
        seen.append(original(*args, **kwargs))
        return seen[-1]

    model.sample_image_mask = spy
    model(data, mode='loss')
    model(data, mode='loss')
    assert int(model.mask_step) == 2 and not torch.equal(seen[0], seen[1])
    model.mask_step.fill_(1)  # as after loading a checkpoint saved after one step
    model(data, mode='loss')
    assert torch.equal(seen[2], seen[1])
    assert 'mask_step' in model.state_dict()


@pytest.mark.slow
def test_train_step_averages_the_tokenizer_and_the_teacher_tower():
    """SILC's train_step (inherited as is) moves every teacher of the masked branch towards its
    student after an optimizer step: m * teacher + (1 - m) * student."""
    from mmengine.optim import OptimWrapper

    model = build_masked(teacher=dict(momentum=0.9))
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5))
    before = {id(t): [p.clone() for p in t.parameters()] for _, t in model.student_teacher_pairs()}
    log_vars = model.train_step(dict(inputs=captioned_batch(), data_samples=None), optim_wrapper)
    assert log_vars['ema_momentum'] == 0.9
    for student, teacher in model.student_teacher_pairs():
        for old, s, t in zip(before[id(teacher)], student.parameters(), teacher.parameters()):
            torch.testing.assert_close(t, 0.9 * old + 0.1 * s.detach())
    moved = [
        not torch.equal(old, t) for old, t in zip(before[id(model.teacher_masked_head)],
                                                  model.teacher_masked_head.parameters())
    ]
    assert any(moved)
