"""NonFiniteGuardOptimWrapper / NonFiniteGuardAmpOptimWrapper in one process (the two-process
agreement is in tests/test_dist/test_dist_silc.py)."""
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import AmpOptimWrapper, OptimWrapper, build_optim_wrapper
from mmengine.registry import DefaultScope

from silc_seg.engine.optimizers import NonFiniteGuardAmpOptimWrapper, nonfinite_ranks
from tests.test_foundation.toy_modules import ToyRegressor


def toy_step(model, optim_wrapper, bad=False):
    """BaseModel.train_step, keeping what ``update_params`` returns: ``(log_vars, applied)``."""
    targets = torch.tensor([1.0, 2.0, 3.0])
    if bad:
        targets[1] = float('inf')
    data = dict(inputs=torch.arange(12.0).reshape(3, 4) / 10, targets=targets)
    with optim_wrapper.optim_context(model):
        data = model.data_preprocessor(data, True)
        losses = model._run_forward(data, mode='loss')
    loss, log_vars = model.parse_losses(losses)
    return log_vars, optim_wrapper.update_params(loss)


def test_nonfinite_ranks_single_process():
    assert nonfinite_ranks(torch.tensor(1.5)) == []
    assert nonfinite_ranks(torch.tensor(float('nan'))) == [0]
    assert nonfinite_ranks(torch.tensor(float('-inf'))) == [0]


@pytest.mark.parametrize('wrapper_type',
                         ['NonFiniteGuardOptimWrapper', 'NonFiniteGuardAmpOptimWrapper'])
def test_guard_builds_from_config_and_guards_any_model(wrapper_type, monkeypatch):
    if wrapper_type == 'NonFiniteGuardAmpOptimWrapper':
        # AmpOptimWrapper refuses to be built without an accelerator; on CPU its GradScaler
        # disables itself and autocast runs in bf16 on the CPU, which is all this test needs.
        monkeypatch.setattr('mmengine.optim.optimizer.amp_optimizer_wrapper.is_cuda_available',
                            lambda: True)
    torch.manual_seed(0)
    model = ToyRegressor()
    cfg = dict(type=wrapper_type, optimizer=dict(type='SGD', lr=0.1), skip_nonfinite_steps=True)
    if wrapper_type.endswith('AmpOptimWrapper'):
        cfg['dtype'] = 'bfloat16'
    # silc-seg registers into mmseg's registry: found unprefixed under the configs' scope.
    with DefaultScope.overwrite_default_scope('mmseg'):
        optim_wrapper = build_optim_wrapper(model, cfg)
    assert type(optim_wrapper).__name__ == wrapper_type
    base = AmpOptimWrapper if 'Amp' in wrapper_type else OptimWrapper
    assert isinstance(optim_wrapper, base)
    hub = MessageHub.get_current_instance()
    hub.update_info('nonfinite_skips', 0)

    assert toy_step(model, optim_wrapper)[1] is True
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.warns(UserWarning, match='skipped the optimizer step'):
        log_vars, applied = toy_step(model, optim_wrapper, bad=True)
    assert applied is False and not torch.isfinite(log_vars['loss'])
    assert hub.get_info('nonfinite_skips') == 1
    assert hub.get_scalar('train/nonfinite_skips').current() == 1
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    assert toy_step(model, optim_wrapper)[1] is True  # training goes on
    assert not torch.equal(model.linear.weight, before['linear.weight'])


def test_amp_guard_state_dict_round_trip(monkeypatch):
    monkeypatch.setattr('mmengine.optim.optimizer.amp_optimizer_wrapper.is_cuda_available',
                        lambda: True)
    model = ToyRegressor()
    optim_wrapper = NonFiniteGuardAmpOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), dtype='bfloat16')
    state = optim_wrapper.state_dict()
    assert 'loss_scaler' in state
    optim_wrapper.load_state_dict(state)
    MessageHub.get_current_instance().update_info('iter', 3)
    with pytest.raises(FloatingPointError, match=r'iteration 3 \(loss=inf on rank 0\)'):
        toy_step(model, optim_wrapper, bad=True)
