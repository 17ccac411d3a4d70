"""CAT-Seg's dense image features: ``encode_dense(variant='catseg')`` against the equations of
``ResidualAttentionBlock.forward_dense`` and ``VisualTransformer.forward(dense=True)``
(cvlab-kaist/CAT-Seg ``cat_seg/third_party/model_vpt.py``), written out here on raw weights in the
reference's sequence-first layout."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope

import silc_seg  # noqa: F401
from silc_seg.models.layers.cat_seg_qv_finetune import setup_qv_finetuning
from silc_seg.models.layers.dense_attention import last_block_forward
from silc_seg.registry import MODELS

init_default_scope('mmseg')


def random_tower(**overrides):
    cfg = dict(
        type='SILCVisionTransformer',
        arch=dict(width=48, depth=3, num_heads=4, patch_size=8, mlp_ratio=2.0),
        img_size=32,
        output_dim=24,
        ln_pre=True,
        act='quick_gelu')
    cfg.update(overrides)
    torch.manual_seed(0)
    tower = MODELS.build(cfg).eval()
    with torch.no_grad():  # non-trivial LayerNorm affine parameters and biases
        for name, param in tower.named_parameters():
            if name.endswith(('ln_1.weight', 'ln_2.weight', 'ln_post.weight')):
                param.copy_(1 + 0.3 * torch.randn_like(param))
            elif name.endswith('bias'):
                param.copy_(0.1 * torch.randn_like(param))
    return tower


def tokens_before_last_block(tower, images):
    x, hw = tower.embed(images)
    for block in tower.blocks[:-1]:
        x = block(x)
    return x, hw


def reference_dense(tower, x):
    """forward_dense of the last block, then ln_post and proj on all tokens. ``x`` is (B, N, D)
    batch-first; the reference works on (L, N, D) = (tokens, batch, channels)."""
    block = tower.blocks[-1]
    x = x.transpose(0, 1)  # L N D
    width = x.shape[-1]
    y = F.layer_norm(x, (width, ), block.ln_1.weight, block.ln_1.bias, block.ln_1.eps)
    y = F.linear(y, block.attn.qkv.weight, block.attn.qkv.bias)  # L N 3D: in_proj
    length, batch, _ = y.shape
    y = y.reshape(length, batch, 3, width).permute(2, 1, 0, 3).reshape(3 * batch, length, width)
    y = F.linear(y, block.attn.proj.weight, block.attn.proj.bias)  # out_proj on q, k and v
    _, _, v = y.tensor_split(3, dim=0)
    v = v.transpose(1, 0) + x[:1]  # the class token's block input is every token's residual
    hidden = F.linear(
        F.layer_norm(v, (width, ), block.ln_2.weight, block.ln_2.bias, block.ln_2.eps),
        block.mlp.fc1.weight, block.mlp.fc1.bias)
    hidden = hidden * torch.sigmoid(1.702 * hidden)  # QuickGELU
    v = v + F.linear(hidden, block.mlp.fc2.weight, block.mlp.fc2.bias)
    v = v.transpose(0, 1)  # back to N L D
    v = F.layer_norm(v, (width, ), tower.ln_post.weight, tower.ln_post.bias, tower.ln_post.eps)
    return v @ tower.proj.weight.T


def test_catseg_dense_path_matches_the_reference_equations():
    tower = random_tower()
    images = torch.randn(2, 3, 40, 32)  # a 5 x 4 grid: positional embedding resized
    with torch.no_grad():
        x, hw = tokens_before_last_block(tower, images)
        expected = reference_dense(tower, x)[:, 1:]  # CAT-Seg drops the class token after
        got = tower.encode_dense(images, variant='catseg')['dense']
        plain = tower.encode_dense(images, variant='plain')['dense']
    assert hw == (5, 4)
    expected = expected.transpose(1, 2).reshape(2, 24, 5, 4)
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(plain, expected, atol=1e-2)  # the ordinary block differs


def test_catseg_dense_path_is_unchanged_by_the_qv_split():
    tower = random_tower()
    images = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        before = tower.encode_dense(images, variant='catseg', return_intermediates=(1, ))
        setup_qv_finetuning(tower)
        after = tower.encode_dense(images, variant='catseg', return_intermediates=(1, ))
    assert torch.allclose(after['dense'], before['dense'], atol=1e-6)
    assert torch.allclose(after['intermediates'][0], before['intermediates'][0], atol=1e-6)


def test_each_token_depends_on_itself_and_the_class_token_only():
    tower = random_tower()
    images = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        x, _ = tokens_before_last_block(tower, images)
        out = last_block_forward(tower.blocks[-1], x, 'catseg', (4, 4), 1)
        # (a random change: a constant shift of a token would vanish in LayerNorm)
        changed = x.clone()
        changed[:, 5] += torch.randn(x.shape[-1])  # one patch token
        out_changed = last_block_forward(tower.blocks[-1], changed, 'catseg', (4, 4), 1)
        changed_cls = x.clone()
        changed_cls[:, 0] += torch.randn(x.shape[-1])
        out_changed_cls = last_block_forward(tower.blocks[-1], changed_cls, 'catseg', (4, 4), 1)
    moved = (out_changed - out).abs().amax(dim=-1)[0]
    assert moved[5] > 1e-3 and torch.all(moved[torch.arange(17) != 5] == 0)
    assert torch.all((out_changed_cls - out).abs().amax(dim=-1) > 1e-3)


def test_catseg_dense_path_needs_a_class_token():
    tower = random_tower(class_token=False, pool_type='gap')
    with pytest.raises(ValueError, match='no class token'):
        tower.encode_dense(torch.randn(1, 3, 32, 32), variant='catseg')
