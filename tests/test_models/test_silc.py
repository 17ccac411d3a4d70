"""SILC pretrainer: losses over the view-major batch, teacher, baseline, NaN guard, zero-shot,
predict, init_model."""
import warnings

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from silc_seg.apis import init_model
from silc_seg.engine.optimizers import NonFiniteGuardOptimWrapper
from silc_seg.models.losses import local_global_distill_loss, teacher_probabilities
from silc_seg.registry import MODELS
from silc_seg.utils import import_file_as_module

EMBED_DIM = 16
PROTOS = 24
BATCH = 3
NUM_GLOBAL, NUM_LOCAL = 2, 3
CONTEXT = 8
VOCAB = 64


class WordTokenizer:
    """Test tokenizer: one id per word (hashed into the vocabulary), EOT = the highest id."""

    def __init__(self):
        self.calls = 0

    def __call__(self, texts):
        self.calls += 1
        ids = torch.zeros(len(texts), CONTEXT, dtype=torch.long)
        for row, text in enumerate(texts):
            words = [1 + sum(map(ord, w)) % (VOCAB - 2) for w in text.split()][:CONTEXT - 1]
            ids[row, :len(words) + 1] = torch.tensor(words + [VOCAB - 1])
        return ids


def image_encoder_cfg():
    return dict(
        type='SILCVisionTransformer',
        arch=dict(width=32, depth=2, num_heads=2, patch_size=8),
        img_size=32,
        output_dim=EMBED_DIM)


def text_encoder_cfg():
    return dict(
        type='SILCTextTransformer',
        arch=dict(width=32, depth=1, num_heads=2),
        context_length=CONTEXT,
        vocab_size=VOCAB,
        output_dim=EMBED_DIM)


def model_cfg(distill=True, **kwargs):
    cfg = dict(
        type='SILC',
        image_encoder=image_encoder_cfg(),
        text_encoder=text_encoder_cfg(),
        contrastive_loss=dict(type='ClipContrastiveLoss'),
        data_preprocessor=None)
    if distill:
        cfg.update(
            distill_head=dict(
                type='DistillationHead',
                in_channels=EMBED_DIM,
                out_channels=PROTOS,
                hidden_channels=32,
                bottleneck_channels=8),
            distill_loss=dict(type='LocalGlobalDistillLoss', out_channels=PROTOS),
            teacher=dict(temperature=0.04))
    cfg.update(kwargs)
    return cfg


def build(distill=True, **kwargs):
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(distill, **kwargs))
    model.init_weights()
    return model


def batch(seed=1):
    generator = torch.Generator().manual_seed(seed)
    return dict(
        global_crops=torch.randn(NUM_GLOBAL * BATCH, 3, 32, 32, generator=generator),
        local_crops=torch.randn(NUM_LOCAL * BATCH, 3, 16, 16, generator=generator),
        text=torch.randint(1, VOCAB - 1, (BATCH, CONTEXT), generator=generator))


def test_teacher_starts_as_student_and_takes_no_gradient():
    model = build()
    for student, teacher in model.student_teacher_pairs():
        for (name, s), (_, t) in zip(student.state_dict().items(), teacher.state_dict().items()):
            assert torch.equal(s, t), name
    assert all(not p.requires_grad for p in model.teacher_parameters())
    assert not model.teacher_image_encoder.training
    model.train()
    assert model.image_encoder.training and not model.teacher_image_encoder.training

    losses = model(batch(), mode='loss')
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert all(p.grad is None for p in model.teacher_parameters())
    student_params = [p for p in model.parameters() if p.requires_grad]
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing and student_params


def test_loss_terms_match_per_view_computation():
    model = build(contrastive_weight=0.5, distill_weight=2.0).train()
    data = batch()
    center_before = model.distill_loss.center.clone()
    losses = model(data, mode='loss')
    assert set(losses) == {
        'loss_contrastive', 'loss_distill', 'logit_scale', 'teacher_temp', 'center_norm',
        'teacher_entropy', 'student_teacher_kl', 'prototypes_used'
    }

    with torch.no_grad():
        text = F.normalize(model.text_encoder(data['text']), dim=-1)
        views = data['global_crops'].view(NUM_GLOBAL, BATCH, 3, 32, 32)
        # View-major layout: rows v * B .. (v + 1) * B are crop v of every sample.
        contrastive = sum(
            model.contrastive_loss(F.normalize(model.image_encoder.encode_image(v), dim=-1), text)
            for v in views) / NUM_GLOBAL
        torch.testing.assert_close(losses['loss_contrastive'], 0.5 * contrastive)

        student = torch.cat([
            model.distill_head(model.image_encoder.encode_image(data['global_crops'])),
            model.distill_head(model.image_encoder.encode_image(data['local_crops']))
        ])
        teacher = model.teacher_head(
            model.teacher_image_encoder.encode_image(data['global_crops']))
        targets = teacher_probabilities(teacher, center_before, 0.04)
        distill = local_global_distill_loss(student, targets, BATCH, 0.1)
        torch.testing.assert_close(losses['loss_distill'], 2.0 * distill)
        # Diagnostics written out: entropy of the targets, KL(target || student) over the
        # (teacher view i, student view j != i) pairs, distinct argmax prototypes.
        entropy = -(targets * targets.log()).sum(-1).mean()
        torch.testing.assert_close(losses['teacher_entropy'], entropy)
        log_student = F.log_softmax(student / 0.1, dim=-1).view(-1, BATCH, PROTOS)
        t_views = targets.view(NUM_GLOBAL, BATCH, PROTOS)
        kls = [(t_views[i] * (t_views[i].log() - log_student[j])).sum(-1).mean()
               for i in range(NUM_GLOBAL) for j in range(NUM_GLOBAL + NUM_LOCAL) if i != j]
        torch.testing.assert_close(losses['student_teacher_kl'], sum(kls) / len(kls))
        torch.testing.assert_close(losses['student_teacher_kl'] + losses['teacher_entropy'],
                                   distill)
        assert losses['prototypes_used'].item() == len(set(targets.argmax(-1).tolist()))
    torch.testing.assert_close(losses['logit_scale'], torch.tensor(1 / 0.07))
    assert losses['teacher_temp'].item() == pytest.approx(0.04)
    torch.testing.assert_close(losses['center_norm'], model.distill_loss.center.norm())
    assert losses['center_norm'] > 0  # the center moved


def test_contrastive_only_baseline():
    model = build(distill=False, contrastive_loss=dict(type='SigLipLoss'))
    assert not model.with_distill and not model.student_teacher_pairs()
    for name in ('teacher_image_encoder', 'teacher_head', 'distill_head', 'distill_loss'):
        assert not hasattr(model, name)
    assert not any(k.startswith('teacher') for k in model.state_dict())
    data = batch()
    losses = model(data, mode='loss')
    assert set(losses) == {'loss_contrastive', 'logit_scale', 'logit_bias'}
    without_locals = model(dict(global_crops=data['global_crops'], text=data['text']), mode='loss')
    torch.testing.assert_close(losses['loss_contrastive'], without_locals['loss_contrastive'])
    with pytest.raises(ValueError, match='distill_head is None'):
        MODELS.build(
            model_cfg(
                distill=False, distill_loss=dict(type='LocalGlobalDistillLoss', out_channels=4)))


def test_state_dict_keys_follow_design():
    prefixes = {k.split('.')[0] for k in build().state_dict()}
    assert prefixes == {
        'image_encoder', 'text_encoder', 'contrastive_loss', 'distill_head', 'distill_loss',
        'teacher_image_encoder', 'teacher_head'
    }
    assert 'distill_loss.center' in build().state_dict()


def test_bad_batches_raise_clear_errors():
    model = build(num_global_crops=3)
    data = batch()
    with pytest.raises(ValueError, match='expected 3 global crops'):
        model(data, mode='loss')
    model = build()
    with pytest.raises(ValueError, match='global_crops must be'):
        model(dict(data, global_crops=data['global_crops'][:5]), mode='loss')
    with pytest.raises(ValueError, match='local_crops must be'):
        model(dict(data, local_crops=data['local_crops'][:4]), mode='loss')
    with pytest.raises(KeyError, match='text'):
        model(dict(global_crops=data['global_crops']), mode='loss')


def step(model, optim_wrapper, data):
    return model.train_step(dict(inputs=data, data_samples=None), optim_wrapper)


def test_nonfinite_loss_raises_with_iteration_and_values():
    model = build().train()
    optim_wrapper = NonFiniteGuardOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    MessageHub.get_current_instance().update_info('iter', 7)
    with torch.no_grad():
        model.contrastive_loss.logit_scale.fill_(float('nan'))
    # The guard sits in the optimizer wrapper, which sees the summed loss only.
    with pytest.raises(FloatingPointError, match=r'iteration 7 \(loss=nan on rank 0\)'):
        step(model, optim_wrapper, batch())


@pytest.mark.slow
def test_nonfinite_loss_skips_update_when_configured():
    model = build().train()
    optim_wrapper = NonFiniteGuardOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), skip_nonfinite_steps=True)
    message_hub = MessageHub.get_current_instance()
    message_hub.update_info('nonfinite_skips', 0)
    # A normal step first: applied, so the teacher follows (the step logs its momentum).
    assert 'ema_momentum' in step(model, optim_wrapper, batch())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.image_encoder.pos_embed.fill_(float('inf'))
    before['image_encoder.pos_embed'] = model.image_encoder.pos_embed.clone()
    with pytest.warns(UserWarning, match='skipped the optimizer step'):
        log_vars = step(model, optim_wrapper, batch())
    assert 'ema_momentum' not in log_vars  # the teacher (in the state dict) did not move
    assert not torch.isfinite(log_vars['loss'])
    assert message_hub.get_info('nonfinite_skips') == 1
    for key, value in model.state_dict().items():
        if key != 'distill_loss.center':
            assert torch.equal(value, before[key]), key
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())


def test_predict_sets_normalized_embeddings():
    model = build().eval()
    data = batch()
    image = data['global_crops'][:BATCH]
    samples = model(dict(image=image, text=data['text']), mode='predict')
    assert len(samples) == BATCH
    for i, sample in enumerate(samples):
        torch.testing.assert_close(sample.image_embedding.norm(), torch.tensor(1.0))
        torch.testing.assert_close(sample.image_embedding, model.encode_image(image)[i])
        torch.testing.assert_close(sample.text_embedding, model.encode_text(data['text'])[i])
        assert 'pred_score' not in sample
    raw = model.encode_image(image, normalize=False)
    torch.testing.assert_close(F.normalize(raw, dim=-1), model.encode_image(image))
    tensors = model(dict(image=image), mode='tensor')
    assert set(tensors) == {'image_embedding'}


@pytest.mark.slow
def test_zero_shot_scores_cached_per_weights():
    classes = ['red stripes', 'blue dots', 'green checks']
    templates = ['a photo of {}.', 'a picture with {}']
    tokenizer = WordTokenizer()
    model = build(
        zero_shot_classes=classes, zero_shot_templates=templates, tokenizer=tokenizer).eval()
    image = batch()['global_crops'][:BATCH]
    samples = model.predict(dict(image=image))
    scores = torch.stack([s.pred_score for s in samples])

    with torch.no_grad():
        class_embeddings = torch.stack([
            F.normalize(
                F.normalize(
                    model.text_encoder(tokenizer([t.format(c)
                                                  for t in templates])), dim=-1).mean(0),
                dim=-1) for c in classes
        ])
        logits = (1 / 0.07) * model.encode_image(image) @ class_embeddings.T
    torch.testing.assert_close(scores, logits.softmax(-1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(scores.sum(-1), torch.ones(BATCH))

    calls = tokenizer.calls
    model.predict(dict(image=image))
    assert tokenizer.calls == calls  # cached within a validation run
    model.load_state_dict(model.state_dict())
    model.predict(dict(image=image))
    assert tokenizer.calls == calls + len(classes)  # loading weights drops the cache
    calls = tokenizer.calls

    # A training step changes the weights: the class embeddings are recomputed afterwards.
    model.train()
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1.0))
    step(model, optim_wrapper, batch())
    model.eval()
    new_scores = torch.stack([s.pred_score for s in model.predict(dict(image=image))])
    assert tokenizer.calls > calls
    assert not torch.allclose(new_scores, scores)


def test_zero_shot_config_errors():
    with pytest.raises(ValueError, match='exactly one'):
        build(zero_shot_classes=['a'], zero_shot_templates=['{} {}'], tokenizer=WordTokenizer())
    with pytest.raises(ValueError, match='tokenizer'):
        build(zero_shot_classes=['a'])


def test_tokenize_and_encode_text():
    model = build(tokenizer=WordTokenizer())
    ids = model.tokenize(['red stripes', 'blue'])
    assert ids.shape == (2, CONTEXT)
    assert model.tokenize('red stripes').shape == (1, CONTEXT)
    assert model.encode_text(ids).shape == (2, EMBED_DIM)
    with pytest.raises(RuntimeError, match='without a tokenizer'):
        build().tokenize(['x'])


def test_init_model_loads_and_reports_mismatches(tmp_path):
    trained = build()
    with torch.no_grad():
        trained.image_encoder.pos_embed.add_(1.0)
    ckpt = tmp_path / 'silc.pth'
    torch.save(dict(state_dict=trained.state_dict(), meta=dict()), ckpt)

    cfg = Config(dict(model=model_cfg(), default_scope='mmseg'))
    model = init_model(cfg, str(ckpt))
    assert not model.training
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key

    # The contrastive-only model does not use the teacher: skipped with a warning.
    baseline_cfg = Config(dict(model=model_cfg(distill=False)))
    with pytest.warns(UserWarning, match='skipped .* teacher_'):
        baseline = init_model(baseline_cfg, str(ckpt))
    torch.testing.assert_close(baseline.image_encoder.pos_embed, trained.image_encoder.pos_embed)

    partial = tmp_path / 'towers.pth'
    torch.save({
        k: v
        for k, v in trained.state_dict().items() if not k.startswith('text_encoder.')
    }, partial)
    with pytest.raises(KeyError, match=r'missing key\(s\): text_encoder\.'):
        init_model(cfg, str(partial))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert init_model(cfg).training is False


def test_benchmark_flop_count_matches_torch_counter():
    """tools/analysis_tools/benchmark_step.py's analytical ViT FLOPs == torch's FLOP counter
    plus the attention products (which the counter does not see inside SDPA on CPU)."""
    from pathlib import Path

    from torch.utils.flop_counter import FlopCounterMode
    path = Path(__file__).resolve().parents[2] / 'tools/analysis_tools/benchmark_step.py'
    benchmark = import_file_as_module(str(path), 'benchmark_step')

    encoder = build().image_encoder.eval()
    for size in (32, 16):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            encoder.encode_image(torch.randn(1, 3, size, size))
        tokens = (size // 8)**2 + 1
        attention = encoder.depth * 4 * tokens * tokens * encoder.width
        assert benchmark.vit_forward_flops(encoder, size) == counter.get_total_flops() + attention
