"""Query/value-only tower fine-tuning: parameters, learning rates, gradients, frozen key rows,
and checkpoint keys."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import load_state_dict as mmengine_load_state_dict
from torch import nn

import silc_seg  # noqa: F401
from silc_seg.models.layers.cat_seg_qv_finetune import SplitQKVLinear, setup_qv_finetuning
from silc_seg.registry import MODELS

from .tiny_towers import CATSegTinyViT, tiny_catseg_cfg

init_default_scope('mmseg')

TOWER_LR_MULT = 0.01
BASE_LR = 1e-3
OPTIM_WRAPPER = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=BASE_LR, weight_decay=0.1),
    clip_grad=dict(max_norm=1.0, norm_type=2),
    paramwise_cfg=dict(custom_keys={
        'image_encoder': dict(lr_mult=TOWER_LR_MULT),
        'text_encoder': dict(lr_mult=TOWER_LR_MULT)
    }))

QV_SUFFIXES = ('qkv.query_weight', 'qkv.query_bias', 'qkv.value_weight', 'qkv.value_bias')


def expected_trainable(name):
    if name.startswith('image_encoder.'):
        return name.endswith(QV_SUFFIXES) or name.endswith('pos_embed')
    if name.startswith('text_encoder.'):
        return name.endswith(QV_SUFFIXES) or name.endswith('positional_embedding')
    return True


def build_model():
    torch.manual_seed(0)
    return MODELS.build(tiny_catseg_cfg(train_class_names=['sky', 'grass', 'person', 'car']))


def test_split_qkv_is_a_drop_in_replacement_with_the_same_checkpoint_keys():
    torch.manual_seed(0)
    fused = nn.Linear(8, 24)
    split = SplitQKVLinear(fused)
    x = torch.randn(3, 8)
    assert torch.allclose(split(x), fused(x))
    assert torch.equal(split.weight, fused.weight) and torch.equal(split.bias, fused.bias)
    assert set(split.state_dict()) == {'weight', 'bias'}
    other = nn.Linear(8, 24)
    split.load_state_dict(other.state_dict())
    assert torch.allclose(split(x), other(x))
    assert torch.equal(split.key_weight, other.weight[8:16])
    with pytest.raises(RuntimeError, match='size mismatch'):
        split.load_state_dict(nn.Linear(8, 12).state_dict())
    with pytest.raises(ValueError, match='unknown qkv parts'):
        SplitQKVLinear(fused, trainable=('q', ))


def test_tower_checkpoints_load_unchanged_into_the_split_model():
    torch.manual_seed(0)
    reference = CATSegTinyViT()
    state = reference.state_dict()
    tower = CATSegTinyViT()
    setup_qv_finetuning(tower, ('pos_embed', ))
    tower.load_state_dict(state)  # strict: same keys
    assert set(tower.state_dict()) == set(state)
    x = torch.randn(2, 3, 32, 32)
    expected = reference.encode_dense(x, return_intermediates=(1, ))
    got = tower.encode_dense(x, return_intermediates=(1, ))
    assert torch.allclose(got['dense'], expected['dense'], atol=1e-6)
    assert torch.allclose(got['intermediates'][0], expected['intermediates'][0], atol=1e-6)


def test_setup_rejects_towers_without_fused_qkv_and_unknown_names():
    with pytest.raises(ValueError, match='fused `attn.qkv`'):
        setup_qv_finetuning(nn.Sequential(nn.Linear(4, 4)))
    with pytest.raises(ValueError, match='no parameter named'):
        setup_qv_finetuning(CATSegTinyViT(), ('positional_embedding', ))


def test_only_qv_and_positional_embeddings_train_with_the_tower_multiplier():
    model = build_model()
    for name, param in model.named_parameters():
        assert param.requires_grad == expected_trainable(name), name
    optim_wrapper = build_optim_wrapper(model, OPTIM_WRAPPER)
    lr_of = {}
    for group in optim_wrapper.optimizer.param_groups:
        for param in group['params']:
            lr_of[id(param)] = group['lr']
    seen_tower_trainable = 0
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith(('image_encoder.', 'text_encoder.')):
            seen_tower_trainable += 1
            assert lr_of[id(param)] == pytest.approx(BASE_LR * TOWER_LR_MULT), name
        else:
            assert lr_of[id(param)] == pytest.approx(BASE_LR), name
    # q/v weight + bias of 3 image and 2 text blocks, and both positional embeddings
    assert seen_tower_trainable == (3 + 2) * 4 + 2


def test_gradients_reach_only_trainable_tower_parameters_and_key_rows_never_change():
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    model = build_model()
    optim_wrapper = build_optim_wrapper(model, OPTIM_WRAPPER)
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    fused_before = {k: v.clone() for k, v in model.state_dict().items() if k.endswith('qkv.weight')}
    images = torch.randn(2, 3, 32, 32)
    samples = [
        SegDataSample(gt_sem_seg=PixelData(data=torch.randint(0, 4, (1, 32, 32))))
        for _ in range(2)
    ]
    for step in range(3):
        optim_wrapper.backward(model.loss(images, samples)['loss_ce'])
        if step == 0:
            for name, param in model.named_parameters():
                has_grad = param.grad is not None and param.grad.abs().sum() > 0
                assert has_grad == expected_trainable(name), name
        optim_wrapper.step()
        optim_wrapper.zero_grad()
    for name, param in model.named_parameters():
        changed = not torch.equal(param.detach(), before[name])
        assert changed == expected_trainable(name), name
    for key, fused in fused_before.items():
        now = model.state_dict()[key]
        dims = fused.shape[0] // 3
        assert torch.equal(now[dims:2 * dims], fused[dims:2 * dims]), key  # key rows
        assert not torch.equal(now[:dims], fused[:dims]), key  # query rows
        assert not torch.equal(now[2 * dims:], fused[2 * dims:]), key  # value rows


def real_towers_cfg():
    cfg = tiny_catseg_cfg(train_class_names=['sky', 'grass', 'person', 'car'])
    cfg['image_encoder'] = dict(
        type='SILCVisionTransformer', arch=dict(width=32, depth=4, num_heads=2, patch_size=4,
                                                mlp_ratio=2.0),
        img_size=32, output_dim=16)
    cfg['text_encoder'] = dict(
        type='SILCTextTransformer', arch=dict(context_length=16, vocab_size=256, width=32,
                                              depth=2, num_heads=2, mlp_ratio=2.0,
                                              output_dim=16))
    cfg['guidance_layers'] = (1, 2)
    return cfg


def test_silc_towers_checkpoint_keys_and_qv_only_training():
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    torch.manual_seed(0)
    plain = nn.Module()
    plain.image_encoder = MODELS.build(real_towers_cfg()['image_encoder'])
    plain.text_encoder = MODELS.build(real_towers_cfg()['text_encoder'])
    checkpoint = plain.state_dict()  # the `image_encoder.*`/`text_encoder.*` convention
    model = MODELS.build(real_towers_cfg())
    missing, unexpected = model.load_state_dict(checkpoint, strict=False)
    assert not unexpected
    assert not [key for key in missing if key.startswith(('image_encoder.', 'text_encoder.'))]
    for key, value in checkpoint.items():
        assert torch.equal(model.state_dict()[key], value), key
    # the runner's `load_from` path (mmengine's own recursive loader) splits the qkv rows too
    torch.manual_seed(1)
    other = MODELS.build(real_towers_cfg())
    mmengine_load_state_dict(other, checkpoint, strict=False)
    for key, value in checkpoint.items():
        assert torch.equal(other.state_dict()[key], value), key
    for name, param in model.named_parameters():
        assert param.requires_grad == expected_trainable(name), name
    optim_wrapper = build_optim_wrapper(model, OPTIM_WRAPPER)
    samples = [
        SegDataSample(gt_sem_seg=PixelData(data=torch.randint(0, 4, (1, 32, 32))))
        for _ in range(2)
    ]
    for _ in range(2):
        optim_wrapper.update_params(model.loss(torch.randn(2, 3, 32, 32), samples)['loss_ce'])
    for key, before in checkpoint.items():
        after = model.state_dict()[key]
        if key.endswith('attn.qkv.weight') or key.endswith('attn.qkv.bias'):
            dims = before.shape[0] // 3
            assert torch.equal(after[dims:2 * dims], before[dims:2 * dims]), key
            assert not torch.equal(after[:dims], before[:dims]), key
        elif key.endswith(('pos_embed', 'positional_embedding')):
            assert not torch.equal(after, before), key
        else:
            assert torch.equal(after, before), key
