"""SigLIP 2 recipe model: the loss terms of each stage, the switch (teacher <- student), the
stage in checkpoints."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from silc_seg.registry import MODELS
from tests.test_models.test_masked_self_distill import MASKED_PREDICTION
from tests.test_models.test_silc import BATCH, NUM_GLOBAL, VOCAB, batch, model_cfg


def siglip2_cfg(**kwargs):
    cfg = model_cfg(
        True,
        type='SigLIP2',
        contrastive_loss=dict(type='SigLipLoss'),
        caption_decoder=dict(
            type='LocCaDecoder',
            vocab_size=VOCAB,
            in_channels=32,
            embed_dims=16,
            depth=1,
            num_heads=2,
            max_length=12,
            num_bins=8,
            parallel_prob=0.5),
        **MASKED_PREDICTION,
        distill_weight=0.25,
        masked_distill_weight=0.0625,
        switch_iter=2,
        teacher=dict(momentum=0.9, temperature=0.04))
    cfg.update(kwargs)
    return cfg


def build(**kwargs):
    torch.manual_seed(0)
    model = MODELS.build(siglip2_cfg(**kwargs))
    model.init_weights()
    return model.train()


def recipe_batch(seed=1):
    data = batch(seed)
    generator = torch.Generator().manual_seed(seed + 10)
    data['contrastive_crops'] = torch.randn(BATCH, 3, 32, 32, generator=generator)
    data['region_text'] = torch.randint(1, VOCAB - 1, (BATCH, 1, 3), generator=generator)
    data['region_boxes'] = torch.tensor([[[0.1, 0.2, 0.5, 0.9]]] * BATCH)
    data['region_valid'] = torch.tensor([[True], [False], [True]])
    return data


def step(model, optim_wrapper, iteration, max_iters=10, seed=1):
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', iteration)
    hub.update_info('max_iters', max_iters)
    return model.train_step(dict(inputs=recipe_batch(seed), data_samples=None), optim_wrapper)


def test_first_stage_sigmoid_and_decoder_losses_written_out():
    model = build()
    data = recipe_batch()
    with torch.no_grad():
        losses = model(data, mode='loss')
    assert {'loss_contrastive', 'loss_caption', 'loss_aref', 'loss_gcap'} <= set(losses)
    assert 'loss_distill' not in losses and 'loss_mask_distill' not in losses
    # Sigmoid loss of the whole-image view, written out: -sum log sigmoid(z_ij * (t x.y + b)) / B.
    with torch.no_grad():
        image = F.normalize(model.image_encoder.encode_image(data['contrastive_crops']), dim=-1)
        text = F.normalize(model.text_encoder.encode_text(data['text']), dim=-1)
        scale, bias = model.contrastive_loss.logit_params()
    total = 0.0
    for i in range(BATCH):
        for j in range(BATCH):
            z = 1.0 if i == j else -1.0
            logit = scale.item() * float(image[i] @ text[j]) + bias.item()
            total += -float(F.logsigmoid(torch.tensor(z * logit, dtype=torch.float64)))
    assert losses['loss_contrastive'].item() == pytest.approx(total / BATCH, rel=1e-5)
    # The decoder reads the student's final tokens (after ln_post) of the whole-image view.
    seen = {}
    decoder_loss = model.caption_decoder.loss

    def spy(image_tokens, *args, **kwargs):
        seen['memory'] = image_tokens
        return decoder_loss(image_tokens, *args, **kwargs)

    model.caption_decoder.loss = spy
    with torch.no_grad():
        model(data, mode='loss')
        tokens = model.image_encoder.ln_post(
            model.image_encoder.forward_tokens(data['contrastive_crops']))
    torch.testing.assert_close(seen['memory'], tokens)


@pytest.mark.slow
def test_switch_starts_teacher_from_student_and_turns_self_distillation_on():
    model = build()
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5))
    heads = {
        name: [p.clone() for p in getattr(model, name).parameters()]
        for name in ('distill_head', 'masked_head')
    }
    teacher_init = [p.clone() for p in model.teacher_image_encoder.parameters()]
    for iteration in (0, 1):
        log_vars = step(model, optim_wrapper, iteration)
        assert 'loss_distill' not in log_vars and 'ema_momentum' not in log_vars
        assert log_vars['self_distill_on'] == 0.0
    # First stage: the teacher never moved, the heads had no loss (still at their init).
    for old, new in zip(teacher_init, model.teacher_image_encoder.parameters()):
        assert torch.equal(old, new)
    for name, params in heads.items():
        for old, new in zip(params, getattr(model, name).parameters()):
            assert torch.equal(old, new), name
    assert not bool(model.self_distill_on)

    student_before = [p.detach().clone() for p in model.image_encoder.parameters()]
    log_vars = step(model, optim_wrapper, 2)
    assert bool(model.self_distill_on) and log_vars['self_distill_on'] == 1.0
    assert {'loss_distill', 'loss_mask_distill', 'loss_caption'} <= set(log_vars)
    # Teacher <- student at the switch, then one EMA step: 0.9 * before + 0.1 * after.
    assert log_vars['ema_momentum'] == 0.9
    for before, after, teacher in zip(student_before, model.image_encoder.parameters(),
                                      model.teacher_image_encoder.parameters()):
        torch.testing.assert_close(teacher, 0.9 * before + 0.1 * after.detach())
    assert any(not torch.equal(old, new)
               for old, new in zip(heads['masked_head'], model.masked_head.parameters()))
    # The stage travels in checkpoints.
    state = model.state_dict()
    assert bool(state['self_distill_on'])
    fresh = build()
    fresh.load_state_dict(state)
    assert bool(fresh.self_distill_on)


def test_switch_iteration_from_the_ratio():
    model = build(switch_iter=None, switch_ratio=0.8)
    assert model.switch_iteration(200) == 160
    with pytest.raises(RuntimeError, match='max_iters'):
        model.switch_iteration(None)


def test_without_regions_and_without_contrastive_crops():
    """Samples without boxes train captions only; without a whole-image view the global crops
    serve the sigmoid loss (averaged over them) and the decoder (the first crop)."""
    model = build()
    data = batch()
    with torch.no_grad():
        losses = model(data, mode='loss')
    assert losses['loss_aref'].item() == 0 and losses['loss_gcap'].item() == 0
    assert losses['loss_caption'].item() > 0
    assert data['global_crops'].shape[0] == NUM_GLOBAL * BATCH


def test_bad_configs():
    with pytest.raises(ValueError, match='distill_head'):
        MODELS.build(siglip2_cfg(distill_head=None, distill_loss=None))
    with pytest.raises(ValueError, match='switch_ratio'):
        MODELS.build(siglip2_cfg(switch_ratio=1.5))
