"""Speed options: regional torch.compile of the transformer blocks (helper and hook), fused AdamW
from the pretraining schedule config."""
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from silc_seg.engine.hooks import CompileBlocksHook
from silc_seg.models.layers.transformer import TransformerBlock
from silc_seg.models.utils.compile import compile_transformer_blocks
from .test_silc import batch, build


def _compiled(block):
    return getattr(block, '_compiled_call_impl', None) is not None


def _tower_outputs(model, inputs):
    with torch.no_grad():
        return dict(
            image=model.image_encoder.encode_image(inputs['global_crops']),
            local=model.image_encoder.encode_image(inputs['local_crops']),
            teacher=model.teacher_image_encoder.encode_image(inputs['global_crops']),
            text=model.text_encoder.encode_text(inputs['text']))


@pytest.mark.slow
def test_compile_transformer_blocks_same_outputs_and_keys_own_teacher():
    torch._dynamo.reset()
    model = build()
    inputs = batch()
    eager = _tower_outputs(model, inputs)
    keys = list(model.state_dict())
    count = compile_transformer_blocks(model, dict(backend='eager'))
    blocks = [m for m in model.modules() if isinstance(m, TransformerBlock)]
    # student image tower (2) + teacher image tower (2) + text tower (1)
    assert count == len(blocks) == 5 and all(_compiled(b) for b in blocks)
    assert list(model.state_dict()) == keys
    torch._dynamo.utils.counters.clear()
    compiled = _tower_outputs(model, inputs)
    assert torch._dynamo.utils.counters['stats']['unique_graphs'] > 0  # dynamo did trace them
    for name, value in eager.items():
        torch.testing.assert_close(compiled[name], value)
    losses = model.loss(inputs)
    assert torch.isfinite(losses['loss_contrastive']) and torch.isfinite(losses['loss_distill'])
    # Each compiled teacher block runs the teacher's own weights, not the student's.
    with torch.no_grad():
        model.teacher_image_encoder.blocks[0].mlp.fc2.weight.add_(0.5)
    changed = _tower_outputs(model, inputs)
    assert not torch.allclose(changed['teacher'], eager['teacher'])
    torch.testing.assert_close(changed['image'], eager['image'])


@pytest.mark.slow
def test_compile_blocks_hook_compiles_once_before_train_and_test():
    torch._dynamo.reset()

    class Runner:
        model = build(distill=False)

    hook = CompileBlocksHook(compile_cfg=dict(backend='eager'))
    blocks = [m for m in Runner.model.modules() if isinstance(m, TransformerBlock)]
    assert blocks and not any(_compiled(b) for b in blocks)
    hook.before_train(Runner)
    assert all(_compiled(b) for b in blocks) and hook.compiled
    first = [b._compiled_call_impl for b in blocks]
    hook.before_test(Runner)  # no second compilation
    assert [b._compiled_call_impl for b in blocks] == first


@pytest.mark.slow
def test_fused_adamw_from_schedule_config_matches_foreach():
    cfg = Config.fromfile('configs/_base_/schedules/pretrain_adamw_cosine_bf16.py')
    results = []
    for fused in (False, True):
        model = build(distill=False)
        wrapper_cfg = cfg.optim_wrapper.copy()
        # AmpOptimWrapper needs a GPU: the optimizer settings are what is checked here.
        wrapper_cfg.update(type='OptimWrapper')
        wrapper_cfg.pop('dtype')
        wrapper_cfg.optimizer['fused'] = fused
        wrapper = build_optim_wrapper(model, wrapper_cfg)
        assert bool(wrapper.optimizer.defaults['fused']) is fused
        for _ in range(2):
            losses = model.loss(batch())
            wrapper.update_params(losses['loss_contrastive'])
        results.append([p.detach().clone() for p in model.parameters()])
    for foreach, fused in zip(*results):
        torch.testing.assert_close(fused, foreach, rtol=1e-5, atol=1e-6)
