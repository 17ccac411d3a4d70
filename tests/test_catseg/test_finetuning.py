"""Query/value-only tower fine-tuning: parameters, learning rates, gradients, frozen key rows,
and checkpoint keys."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import load_state_dict as mmengine_load_state_dict
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch import nn

import silc_seg  # noqa: F401
from silc_seg.models.layers.cat_seg_qv_finetune import SplitQKVLinear, setup_qv_finetuning
from silc_seg.registry import MODELS
from .tiny_towers import tiny_catseg_cfg, tiny_image_encoder, tiny_text_encoder

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

IMAGE_BLOCKS, TEXT_BLOCKS = 3, 2  # tiny_catseg_cfg's towers
# CAT-Seg's rule (cat_seg/cat_seg_model.py, CLIP_FINETUNE "attention"): the query and value
# projection weights of every attention layer of both towers; no bias, no positional embedding.
OFFICIAL_TOWER_TRAINABLE = sorted([
    f'image_encoder.blocks.{i}.attn.qkv.{part}_weight' for i in range(IMAGE_BLOCKS)
    for part in ('query', 'value')
] + [
    f'text_encoder.blocks.{i}.attn.qkv.{part}_weight' for i in range(TEXT_BLOCKS)
    for part in ('query', 'value')
])
# our earlier recipe, still available as options: q/v biases and both positional embeddings
OPTION_TOWER_TRAINABLE = sorted(
    OFFICIAL_TOWER_TRAINABLE +
    [name.replace('_weight', '_bias') for name in OFFICIAL_TOWER_TRAINABLE] +
    ['image_encoder.pos_embed', 'text_encoder.positional_embedding'])
WITH_OPTIONS = dict(
    train_qv_bias=True,
    image_trainable_params=('pos_embed', ),
    text_trainable_params=('positional_embedding', ))


def tower_trainable(model):
    return sorted(name for name, param in model.named_parameters()
                  if param.requires_grad and name.startswith(('image_encoder.', 'text_encoder.')))


def build_model(**overrides):
    torch.manual_seed(0)
    return MODELS.build(
        tiny_catseg_cfg(train_class_names=['sky', 'grass', 'person', 'car'], **overrides))


def random_samples(num=2):
    return [
        SegDataSample(gt_sem_seg=PixelData(data=torch.randint(0, 4, (1, 32, 32))))
        for _ in range(num)
    ]


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


@pytest.mark.parametrize('variant', ['catseg', 'plain'])
def test_tower_checkpoints_load_unchanged_into_the_split_model(variant):
    torch.manual_seed(0)
    reference = MODELS.build(tiny_image_encoder())
    state = reference.state_dict()
    tower = MODELS.build(tiny_image_encoder())
    setup_qv_finetuning(tower)
    tower.load_state_dict(state)  # strict: same keys
    assert set(tower.state_dict()) == set(state)
    x = torch.randn(2, 3, 32, 32)
    expected = reference.encode_dense(x, variant=variant, return_intermediates=(1, ))
    got = tower.encode_dense(x, variant=variant, return_intermediates=(1, ))
    assert torch.allclose(got['dense'], expected['dense'], atol=1e-6)
    assert torch.allclose(got['intermediates'][0], expected['intermediates'][0], atol=1e-6)


def test_setup_rejects_towers_without_fused_qkv_and_unknown_names():
    with pytest.raises(ValueError, match='fused `attn.qkv`'):
        setup_qv_finetuning(nn.Sequential(nn.Linear(4, 4)))
    with pytest.raises(ValueError, match='no parameter named'):
        setup_qv_finetuning(MODELS.build(tiny_image_encoder()), ('positional_embedding', ))


def test_default_trains_exactly_cat_segs_query_value_weights():
    model = build_model()
    assert tower_trainable(model) == OFFICIAL_TOWER_TRAINABLE
    # everything outside the towers (the head) trains
    assert all(param.requires_grad for name, param in model.named_parameters()
               if name.startswith('decode_head.'))


def test_biases_and_positional_embeddings_are_options():
    assert tower_trainable(build_model(**WITH_OPTIONS)) == OPTION_TOWER_TRAINABLE


@pytest.mark.parametrize('options', [{}, WITH_OPTIONS], ids=['official', 'options'])
def test_trainable_tower_parameters_get_the_tower_multiplier(options):
    model = build_model(**options)
    optim_wrapper = build_optim_wrapper(model, OPTIM_WRAPPER)
    lr_of = {}
    for group in optim_wrapper.optimizer.param_groups:
        for param in group['params']:
            lr_of[id(param)] = group['lr']
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith(('image_encoder.', 'text_encoder.')):
            assert lr_of[id(param)] == pytest.approx(BASE_LR * TOWER_LR_MULT), name
        else:
            assert lr_of[id(param)] == pytest.approx(BASE_LR), name


@pytest.mark.slow
def test_gradients_reach_only_the_query_and_value_rows_of_the_weights():
    model = build_model()
    optim_wrapper = build_optim_wrapper(model, OPTIM_WRAPPER)
    state_before = {key: value.clone() for key, value in model.state_dict().items()}
    images = torch.randn(2, 3, 32, 32)
    samples = random_samples()
    # CAT-Seg's dense last block uses no query: that weight trains but gets a zero gradient
    # (as in the reference, which also computes and discards it)
    unused_query = f'image_encoder.blocks.{IMAGE_BLOCKS - 1}.attn.qkv.query_weight'
    for step in range(3):
        optim_wrapper.backward(model.loss(images, samples)['loss_ce'])
        if step == 0:
            for name, param in model.named_parameters():
                has_grad = param.grad is not None and param.grad.abs().sum() > 0
                in_tower = name.startswith(('image_encoder.', 'text_encoder.'))
                assert has_grad == (not in_tower or name in OFFICIAL_TOWER_TRAINABLE
                                    and name != unused_query), name
            assert torch.equal(
                model.get_parameter(unused_query).grad,
                torch.zeros_like(model.get_parameter(unused_query)))
        optim_wrapper.step()
        optim_wrapper.zero_grad()
    # in the checkpoint's fused layout: q and v rows of qkv.weight moved, nothing else did
    for key, before in state_before.items():
        after = model.state_dict()[key]
        if not key.startswith(('image_encoder.', 'text_encoder.')):
            continue
        if key.endswith('attn.qkv.weight'):
            dims = before.shape[0] // 3
            if not key.startswith(unused_query.rsplit('.', 1)[0]):
                assert not torch.equal(after[:dims], before[:dims]), key  # query rows
            assert torch.equal(after[dims:2 * dims], before[dims:2 * dims]), key  # key rows
            assert not torch.equal(after[2 * dims:], before[2 * dims:]), key  # value rows
        else:
            assert torch.equal(after, before), key  # biases, positional embeddings, the rest


def test_silc_towers_checkpoint_keys_load_into_the_split_model():
    torch.manual_seed(0)
    plain = nn.Module()
    plain.image_encoder = MODELS.build(tiny_image_encoder())
    plain.text_encoder = MODELS.build(tiny_text_encoder())
    checkpoint = plain.state_dict()  # the `image_encoder.*`/`text_encoder.*` convention
    model = build_model()
    missing, unexpected = model.load_state_dict(checkpoint, strict=False)
    assert not unexpected
    assert not [key for key in missing if key.startswith(('image_encoder.', 'text_encoder.'))]
    for key, value in checkpoint.items():
        assert torch.equal(model.state_dict()[key], value), key
    # the runner's `load_from` path (mmengine's own recursive loader) splits the qkv rows too
    other = build_model()
    mmengine_load_state_dict(other, checkpoint, strict=False)
    for key, value in checkpoint.items():
        assert torch.equal(other.state_dict()[key], value), key
