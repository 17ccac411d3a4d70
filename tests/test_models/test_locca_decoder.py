"""LocCa decoder: causal mask, parallel prediction, task sequences and the loss written out."""
import math

import pytest
import torch

from silc_seg.registry import MODELS

VOCAB, BINS, WIDTH = 30, 10, 16
CAP, AREF, GCAP = VOCAB + BINS, VOCAB + BINS + 1, VOCAB + BINS + 2
MASK = VOCAB + BINS + 3


def build(parallel_prob=0.5, seed=0):
    torch.manual_seed(seed)
    decoder = MODELS.build(
        dict(
            type='LocCaDecoder',
            vocab_size=VOCAB,
            in_channels=12,
            embed_dims=WIDTH,
            depth=2,
            num_heads=2,
            max_length=12,
            num_bins=BINS,
            parallel_prob=parallel_prob))
    decoder.init_weights()
    # Random weights everywhere (the logits layer starts at zero, as CapPa's).
    torch.nn.init.normal_(decoder.logits.weight, std=0.5)
    return decoder.eval()


def test_causal_mask_future_tokens_do_not_change_earlier_logits():
    decoder = build()
    image = torch.randn(2, 5, 12)
    seq = torch.randint(0, VOCAB, (2, 9))
    changed = seq.clone()
    changed[:, 6:] = torch.randint(0, VOCAB, (2, 3))
    with torch.no_grad():
        a, b = decoder(seq, image), decoder(changed, image)
    # Logit t predicts seq[t + 1] from inputs seq[:t + 1]: positions 0..5 see no change.
    torch.testing.assert_close(a[:, :6], b[:, :6], rtol=0, atol=0)
    assert not torch.allclose(a[:, 6:], b[:, 6:])
    # The image matters.
    with torch.no_grad():
        assert not torch.allclose(decoder(seq, image + 1), a)


def test_parallel_mode_sees_only_mask_tokens_and_attends_both_ways():
    decoder = build()
    image = torch.randn(2, 5, 12)
    seq = torch.randint(0, VOCAB, (2, 9))
    other = torch.randint(0, VOCAB, (2, 9))
    masks = torch.full_like(seq, MASK)
    with torch.no_grad():
        parallel = decoder(seq, image, parallel=True)
        # Targets never enter: any sequence gives the same logits.
        torch.testing.assert_close(parallel, decoder(other, image, parallel=True), rtol=0, atol=0)
        # Equal to the mask-token inputs decoded without a causal mask, written out here:
        # embedding + positions, then the blocks with no attention mask.
        x = decoder.token_embedding(masks[:, :-1]) + decoder.pos_embed[:, :8]
        x = decoder.blocks(x, decoder.input_proj(image))
        torch.testing.assert_close(parallel, decoder.logits(decoder.norm(x)))
        # ... and not what the causal decoder gives on the same mask inputs.
        assert not torch.allclose(parallel, decoder(masks, image))


def test_sequences_of_the_three_tasks():
    decoder = build()
    pad = 0
    text = torch.tensor([[5, 6, 7, pad], [8, 9, pad, pad]])
    region_text = torch.tensor([[[11, 12, pad]], [[13, pad, pad]]])
    boxes = torch.tensor([[[0.0, 0.25, 0.5, 1.0]], [[0.1, 0.1, 0.2, 0.2]]])
    valid = torch.tensor([[True], [False]])
    tasks = decoder.build_sequences(text, region_text, boxes, valid)
    cap = tasks['caption']
    assert cap['sequences'].tolist() == [[CAP, 5, 6, 7], [CAP, 8, 9, pad]]
    assert cap['loss_mask'].tolist() == [[True, True, True], [True, True, False]]
    # Bins floor(c * 10), the value 1.0 in the last bin; coordinates follow the text ids.
    box = [VOCAB + 0, VOCAB + 2, VOCAB + 5, VOCAB + 9]
    assert tasks['aref']['sequences'].tolist() == [[AREF, 11, 12, *box]]
    assert tasks['aref']['loss_mask'].tolist() == [[False, False, True, True, True, True]]
    assert tasks['gcap']['sequences'].tolist() == [[GCAP, *box, 11, 12]]
    assert tasks['gcap']['loss_mask'].tolist() == [[False, False, False, False, True, True]]
    assert tasks['aref']['image_index'].tolist() == [0]
    # No region in the batch: captions only.
    assert set(decoder.build_sequences(text)) == {'caption'}


def written_out_ce(logits, labels, counted):
    """Token-mean cross-entropy over the counted labels: -sum log softmax[label] / count."""
    total, count = 0.0, 0
    for n in range(labels.shape[0]):
        for t in range(labels.shape[1]):
            if counted[n, t]:
                row = logits[n, t].double()
                log_z = math.log(sum(math.exp(v) for v in row.tolist()))
                total += log_z - row[labels[n, t]].item()
                count += 1
    return total / count


@pytest.mark.slow
@pytest.mark.parametrize('parallel_prob', [0.0, 1.0, 0.5])
def test_loss_equals_written_out_cross_entropy(parallel_prob):
    decoder = build(parallel_prob)
    image = torch.randn(3, 5, 12)
    text = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0], [3, 4, 5, 6]])
    region_text = torch.tensor([[[11, 12, 0]], [[13, 0, 0]], [[1, 2, 3]]])
    boxes = torch.rand(3, 1, 4)
    valid = torch.tensor([[True], [False], [True]])
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        losses = decoder.loss(image, text, region_text, boxes, valid, generator)
    parallel = torch.rand(3, generator=torch.Generator().manual_seed(4)) < parallel_prob
    tasks = decoder.build_sequences(text, region_text, boxes, valid)
    # Caption: each row decoded in its own mode, one token mean over the whole batch.
    seqs, counted = tasks['caption']['sequences'], tasks['caption']['loss_mask']
    with torch.no_grad():
        logits = torch.cat(
            [decoder(seqs[n:n + 1], image[n:n + 1], parallel=bool(parallel[n])) for n in range(3)])
    expected = written_out_ce(logits, seqs[:, 1:], counted)
    assert losses['loss_caption'].item() == pytest.approx(expected, rel=1e-5)
    assert losses['parallel_share'].item() == pytest.approx(parallel.float().mean().item())
    for task in ('aref', 'gcap'):
        item = tasks[task]
        with torch.no_grad():
            logits = decoder(item['sequences'], image[item['image_index']])
        expected = written_out_ce(logits, item['sequences'][:, 1:], item['loss_mask'])
        assert losses[f'loss_{task}'].item() == pytest.approx(expected, rel=1e-5)


def test_no_regions_gives_zero_region_losses_with_gradient_path():
    decoder = build().train()
    image = torch.randn(2, 5, 12, requires_grad=True)
    losses = decoder.loss(
        image, torch.tensor([[5, 6, 0], [7, 0, 0]]), generator=torch.Generator().manual_seed(0))
    assert losses['loss_aref'].item() == 0 and losses['loss_gcap'].item() == 0
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match='parallel_prob'):
        MODELS.build(
            dict(
                type='LocCaDecoder',
                vocab_size=5,
                in_channels=4,
                embed_dims=8,
                num_heads=2,
                parallel_prob=1.5))
    decoder = build()
    with pytest.raises(ValueError, match='max_length'):
        decoder(torch.zeros(1, 13, dtype=torch.long), torch.randn(1, 2, 12))
