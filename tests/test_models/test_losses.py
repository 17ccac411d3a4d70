"""Losses and distillation head against OpenCLIP and the DINO equations written out."""
import math

import open_clip.loss as oc_loss
import pytest
import torch
import torch.nn.functional as F

from silc_seg.models.heads import DistillationHead
from silc_seg.models.losses import ClipContrastiveLoss, LocalGlobalDistillLoss, SigLipLoss
from silc_seg.registry import MODELS


def paired_features(num=6, dim=8, seed=0):
    torch.manual_seed(seed)
    image = F.normalize(torch.randn(num, dim, dtype=torch.float64), dim=-1)
    text = F.normalize(torch.randn(num, dim, dtype=torch.float64), dim=-1)
    return image.requires_grad_(), text.requires_grad_()


@pytest.mark.parametrize('init_scale', [math.log(1 / 0.07), 1.5])
def test_clip_loss_matches_open_clip(init_scale):
    image, text = paired_features()
    loss_fn = ClipContrastiveLoss(init_logit_scale=init_scale).double()
    loss = loss_fn(image, text)
    loss.backward()

    ref_image, ref_text = (t.detach().clone().requires_grad_() for t in (image, text))
    ref_log_scale = loss_fn.logit_scale.detach().clone().requires_grad_()
    ref = oc_loss.ClipLoss()(ref_image, ref_text, ref_log_scale.exp())
    ref.backward()

    torch.testing.assert_close(loss, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(image.grad, ref_image.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(text.grad, ref_text.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(loss_fn.logit_scale.grad, ref_log_scale.grad, rtol=0, atol=1e-12)
    assert loss_fn.logit_scale.item() == pytest.approx(init_scale)


def test_clip_logit_scale_clamped_at_max():
    image, text = paired_features()
    loss_fn = ClipContrastiveLoss(init_logit_scale=math.log(400.0)).double()
    assert loss_fn.scale().item() == pytest.approx(100.0)
    loss = loss_fn(image, text)
    loss.backward()
    ref = oc_loss.ClipLoss()(image.detach(), text.detach(), torch.tensor(100.0).double())
    torch.testing.assert_close(loss.detach(), ref, rtol=0, atol=1e-12)
    # Above the clamp the temperature gets no gradient (it cannot grow further).
    assert loss_fn.logit_scale.grad.item() == 0.0


def test_clip_default_temperature():
    assert ClipContrastiveLoss().scale().item() == pytest.approx(1 / 0.07, rel=1e-6)


def test_siglip_loss_matches_open_clip():
    image, text = paired_features(num=5, dim=7, seed=1)
    loss_fn = SigLipLoss().double()
    assert loss_fn.logit_scale.item() == pytest.approx(math.log(10))
    assert loss_fn.logit_bias.item() == -10.0
    with torch.no_grad():  # away from the init so that both terms of the loss matter
        loss_fn.logit_scale.fill_(math.log(7.0))
        loss_fn.logit_bias.fill_(-1.5)
    loss = loss_fn(image, text)
    loss.backward()

    ref_image, ref_text = (t.detach().clone().requires_grad_() for t in (image, text))
    ref_log_scale = torch.tensor(math.log(7.0), dtype=torch.float64, requires_grad=True)
    ref_bias = torch.tensor(-1.5, dtype=torch.float64, requires_grad=True)
    ref = oc_loss.SigLipLoss()(ref_image, ref_text, ref_log_scale.exp(), ref_bias)
    ref.backward()

    torch.testing.assert_close(loss, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(image.grad, ref_image.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(text.grad, ref_text.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(loss_fn.logit_scale.grad, ref_log_scale.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(loss_fn.logit_bias.grad, ref_bias.grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize('loss_type', ['ClipContrastiveLoss', 'SigLipLoss'])
def test_contrastive_losses_reject_unpaired_features(loss_type):
    loss_fn = MODELS.build(dict(type=loss_type))
    with pytest.raises(ValueError, match='pair up'):
        loss_fn(torch.randn(4, 8), torch.randn(3, 8))


def dino_loss_by_loops(student, teacher, center, batch_size, student_temp, teacher_temp):
    """DINO's loss written sample by sample, view pair by view pair, with explicit softmaxes."""
    num_student_views = student.shape[0] // batch_size
    num_teacher_views = teacher.shape[0] // batch_size
    total, count = 0.0, 0
    for i in range(num_teacher_views):
        for j in range(num_student_views):
            if i == j:
                continue
            pair = 0.0
            for b in range(batch_size):
                t = teacher[i * batch_size + b]
                s = student[j * batch_size + b]
                t_exp = torch.exp((t - center[0]) / teacher_temp)
                p_teacher = t_exp / t_exp.sum()
                s_scaled = s / student_temp
                log_p_student = s_scaled - torch.log(torch.exp(s_scaled).sum())
                pair += -(p_teacher * log_p_student).sum()
            total += pair / batch_size
            count += 1
    return total / count


@pytest.mark.parametrize('num_global, num_local', [(2, 6), (2, 0), (1, 3)])
def test_distill_loss_matches_dino_equations(num_global, num_local):
    torch.manual_seed(0)
    batch_size, num_protos = 3, 11
    loss_fn = LocalGlobalDistillLoss(num_protos, student_temp=0.1, center_momentum=0.9).double()
    loss_fn.center.copy_(torch.randn(1, num_protos).double())
    center_before = loss_fn.center.clone()
    student = torch.randn(
        (num_global + num_local) * batch_size, num_protos, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(num_global * batch_size, num_protos, dtype=torch.float64)

    loss = loss_fn(student, teacher, batch_size, 0.04)
    expected = dino_loss_by_loops(student.detach(), teacher, center_before, batch_size, 0.1, 0.04)
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-10, atol=1e-10)

    loss.backward()
    ref_student = student.detach().clone().requires_grad_()
    dino_loss_by_loops(ref_student, teacher, center_before, batch_size, 0.1, 0.04).backward()
    torch.testing.assert_close(student.grad, ref_student.grad, rtol=1e-9, atol=1e-12)

    expected_center = 0.9 * center_before + 0.1 * teacher.mean(dim=0, keepdim=True)
    torch.testing.assert_close(loss_fn.center, expected_center, rtol=0, atol=1e-12)


def test_distill_teacher_gets_no_gradient_and_eval_keeps_center():
    loss_fn = LocalGlobalDistillLoss(5)
    teacher = torch.randn(4, 5, requires_grad=True)
    student = torch.randn(8, 5, requires_grad=True)
    loss_fn.eval()
    loss_fn(student, teacher, batch_size=2, teacher_temp=0.04).backward()
    assert teacher.grad is None
    assert torch.count_nonzero(loss_fn.center) == 0


def test_distill_teacher_temp_is_passed_per_call():
    torch.manual_seed(0)
    loss_fn = LocalGlobalDistillLoss(7).eval()
    student, teacher = torch.randn(6, 7), torch.randn(4, 7)
    sharp = loss_fn(student, teacher, 2, 0.07)
    soft = loss_fn(student, teacher, 2, 0.5)
    torch.testing.assert_close(soft,
                               dino_loss_by_loops(student, teacher, loss_fn.center, 2, 0.1, 0.5))
    assert not torch.isclose(sharp, soft)


@pytest.mark.parametrize('student_rows, teacher_rows, match', [(7, 4, 'num_views'),
                                                               (2, 4, 'more views'),
                                                               (4, 4, 'at least 2')])
def test_distill_loss_rejects_bad_layouts(student_rows, teacher_rows, match):
    loss_fn = LocalGlobalDistillLoss(5)
    with pytest.raises(ValueError, match=match):
        loss_fn(
            torch.randn(student_rows, 5),
            torch.randn(teacher_rows, 5),
            batch_size=4 if student_rows == 4 else 2,
            teacher_temp=0.07)


def test_distill_loss_rejects_bad_settings():
    with pytest.raises(ValueError, match='center_momentum'):
        LocalGlobalDistillLoss(5, center_momentum=1.0)
    with pytest.raises(ValueError, match='prototypes'):
        LocalGlobalDistillLoss(5)(torch.randn(6, 4), torch.randn(2, 4), 2, 0.07)
    with pytest.raises(ValueError, match='teacher_temp must be positive'):
        LocalGlobalDistillLoss(4)(torch.randn(6, 4), torch.randn(2, 4), 2, 0.0)


@pytest.mark.parametrize('norm_last_layer', [True, False])
def test_distillation_head(norm_last_layer):
    torch.manual_seed(0)
    head = MODELS.build(
        dict(
            type='DistillationHead',
            in_channels=16,
            out_channels=50,
            hidden_channels=32,
            bottleneck_channels=8,
            norm_last_layer=norm_last_layer))
    head.init_weights()
    linears = [m for m in head.mlp if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(16, 32), (32, 32), (32, 8)]
    assert sum(isinstance(m, torch.nn.GELU) for m in head.mlp) == 2
    x = torch.randn(4, 16)
    out = head(x)
    assert out.shape == (4, 50)
    # Unit prototypes on an L2-normalized bottleneck: the logits are cosine similarities.
    prototypes = head.last_layer.weight
    torch.testing.assert_close(prototypes.norm(dim=1), torch.ones(50))
    bottleneck = F.normalize(head.mlp(x), dim=-1)
    torch.testing.assert_close(out, bottleneck @ prototypes.T)
    assert out.abs().max() <= 1 + 1e-5

    out.square().sum().backward()
    gain = head.last_layer.parametrizations.weight.original0
    assert gain.requires_grad is (not norm_last_layer)
    assert (gain.grad is None) is norm_last_layer
    assert head.last_layer.parametrizations.weight.original1.grad.abs().sum() > 0
    assert linears[0].weight.grad.abs().sum() > 0


def test_distillation_head_single_layer():
    head = DistillationHead(6, out_channels=9, bottleneck_channels=4, num_layers=1)
    assert len(head.mlp) == 1 and head(torch.randn(2, 6)).shape == (2, 9)
    with pytest.raises(ValueError, match='num_layers'):
        DistillationHead(6, num_layers=0)


def test_distill_center_ignores_nonfinite_batches():
    loss_fn = LocalGlobalDistillLoss(4)
    teacher = torch.randn(4, 4)
    teacher[1, 2] = float('nan')
    loss = loss_fn(torch.randn(6, 4), teacher, 2, 0.07)
    assert not torch.isfinite(loss)
    assert torch.count_nonzero(loss_fn.center) == 0
