"""Dense last-block variants (MaskCLIP, SCLIP, ClearCLIP, NACLIP) against their published
equations.

Every reference below is written out in this file from the block's raw weight tensors, in the
references' own layout (tokens first, ``(L, B, D)``; heads folded into the batch for ``bmm``), and
never calls our attention code:

- MaskCLIP (chongzhou96/MaskCLIP ``mmseg/models/backbones/vit.py``,
  ``TransformerEncoderLayer.forward(return_qkv=True)``): ``v = x + out_proj(v_proj(ln_1(x)))``,
  ``v = v + mlp(ln_2(v))``.
- SCLIP (wangf3014/SCLIP ``clip/model.py``, ``VisionTransformer.forward`` with ``csa=True``):
  ``x = x + out_proj((softmax(q q^T s) + softmax(k k^T s)) v)``, then ``x = x + mlp(ln_2(x))``.
- ClearCLIP (mc-lan/ClearCLIP ``open_clip/transformer.py``, ``model_type='ClearCLIP'``,
  ``ignore_residual=True``): ``out_proj(softmax(q q^T s) v)`` alone.
- ClearCLIP as shipped (``configs/base_config.py``: ``model_type='vanilla'``,
  ``ignore_residual=True``): ``out_proj(softmax(q k^T s) v)`` alone.
- NACLIP (sinahmr/NACLIP ``clip/model.py``, ``arch='reduced'``, ``attn_strategy='naclip'``):
  ``out_proj(softmax(k k^T s + omega) v)`` alone, ``omega`` the Gaussian window (std 5) of the
  grid offset between two patches, zero for the class token's row and column.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from silc_seg.models.layers.dense_attention import (DENSE_VARIANTS, last_block_forward,
                                                    neighbourhood_bias)
from silc_seg.models.layers.transformer import TransformerBlock

WIDTH, HEADS = 32, 4
HW = (3, 4)
PREFIX = 1


def make_block(layer_scale_init=None, act='quick_gelu'):
    torch.manual_seed(0)
    block = TransformerBlock(WIDTH, HEADS, act=act, layer_scale_init=layer_scale_init).eval()
    with torch.no_grad():  # non-trivial LayerNorm affine parameters and biases
        for norm in (block.ln_1, block.ln_2):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_()
        block.attn.qkv.bias.normal_(std=0.5)
        block.attn.proj.bias.normal_(std=0.5)
    return block


def tokens(seed=1):
    torch.manual_seed(seed)
    return torch.randn(2, PREFIX + HW[0] * HW[1], WIDTH)


def run(block, x, variant):
    with torch.no_grad():
        return last_block_forward(block, x, variant, HW, PREFIX)


# ------------------------------------------------------------------ references, written out
def ref_layer_norm(x, norm):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean)**2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias


def ref_mlp(x, block):
    hidden = x @ block.mlp.fc1.weight.T + block.mlp.fc1.bias
    hidden = hidden * torch.sigmoid(1.702 * hidden)  # OpenAI CLIP's QuickGELU
    return hidden @ block.mlp.fc2.weight.T + block.mlp.fc2.bias


def ref_qkv(x_lnd, block):
    """in_proj then per-head (L, B * heads, head_dim) -> (B * heads, L, head_dim)."""
    length, batch, width = x_lnd.shape
    head_dim = width // HEADS
    q, k, v = (x_lnd @ block.attn.qkv.weight.T + block.attn.qkv.bias).chunk(3, dim=-1)
    return [
        t.contiguous().view(length, batch * HEADS, head_dim).transpose(0, 1) for t in (q, k, v)
    ]


def ref_out_proj(weights, v, batch, block):
    out = torch.bmm(weights, v)  # (B * heads, L, head_dim)
    length = out.shape[1]
    out = out.transpose(0, 1).contiguous().view(length, batch, WIDTH)
    return out @ block.attn.proj.weight.T + block.attn.proj.bias


def ref_gaussian_omega(hw, std):
    """NACLIP's addition: exp(-((di)^2 + (dj)^2) / (2 std^2)) for every pair of patches, by
    explicit loops; the class token's row and column are zero."""
    h, w = hw
    omega = torch.zeros(1 + h * w, 1 + h * w)
    for a in range(h * w):
        for b in range(h * w):
            di, dj = a // w - b // w, a % w - b % w
            omega[1 + a, 1 + b] = math.exp(-(di * di + dj * dj) / (2 * std * std))
    return omega


def reference_last_block(block, x_bnd, variant):
    """The published last block of ``variant`` on (B, N, D) tokens, from raw weights."""
    batch = x_bnd.shape[0]
    x = x_bnd.transpose(0, 1)  # (L, B, D), the references' layout
    scale = (WIDTH // HEADS)**-0.5
    q, k, v = ref_qkv(ref_layer_norm(x, block.ln_1), block)
    if variant == 'maskclip':
        # q, k, v all go through out_proj; v is the value path.
        y = ref_layer_norm(x, block.ln_1) @ block.attn.qkv.weight.T + block.attn.qkv.bias
        v_path = y[..., 2 * WIDTH:] @ block.attn.proj.weight.T + block.attn.proj.bias
        out = x + v_path
        out = out + ref_mlp(ref_layer_norm(out, block.ln_2), block)
    elif variant == 'sclip':
        weights = (
            F.softmax(torch.bmm(q, q.transpose(1, 2)) * scale, dim=-1) +
            F.softmax(torch.bmm(k, k.transpose(1, 2)) * scale, dim=-1))
        out = x + ref_out_proj(weights, v, batch, block)
        out = out + ref_mlp(ref_layer_norm(out, block.ln_2), block)
    elif variant == 'clearclip':
        weights = F.softmax(torch.bmm(q, q.transpose(1, 2)) * scale, dim=-1)
        out = ref_out_proj(weights, v, batch, block)
    elif variant == 'clearclip_vanilla':
        weights = F.softmax(torch.bmm(q, k.transpose(1, 2)) * scale, dim=-1)
        out = ref_out_proj(weights, v, batch, block)
    elif variant == 'naclip':
        logits = torch.bmm(k, k.transpose(1, 2)) * scale + ref_gaussian_omega(HW, 5.0)
        out = ref_out_proj(F.softmax(logits, dim=-1), v, batch, block)
    else:
        raise AssertionError(variant)
    return out.transpose(0, 1)


# ------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize('variant',
                         ['maskclip', 'sclip', 'clearclip', 'clearclip_vanilla', 'naclip'])
@pytest.mark.parametrize('seed', [1, 2])
def test_variant_matches_published_block(variant, seed):
    block, x = make_block(), tokens(seed)
    with torch.no_grad():
        expected = reference_last_block(block, x, variant)
    torch.testing.assert_close(run(block, x, variant), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('variant', ['maskclip', 'sclip'])
def test_variants_with_ffn_depend_on_it(variant):
    """SCLIP and MaskCLIP keep the FFN: changing its weights changes the output."""
    block, x = make_block(), tokens()
    out = run(block, x, variant)
    with torch.no_grad():
        block.mlp.fc2.weight.mul_(3.0)
    assert not torch.allclose(run(block, x, variant), out)


@pytest.mark.parametrize('variant', ['clearclip', 'clearclip_vanilla', 'naclip'])
def test_reduced_variants_ignore_the_ffn(variant):
    block, x = make_block(), tokens()
    out = run(block, x, variant)
    with torch.no_grad():
        block.mlp.fc1.weight.normal_()
        block.ln_2.weight.normal_()
    torch.testing.assert_close(run(block, x, variant), out)


@pytest.mark.parametrize('variant', DENSE_VARIANTS)
@pytest.mark.parametrize('layer_scale_init', [None, 0.3])
def test_shapes(variant, layer_scale_init):
    x = tokens()
    assert run(make_block(layer_scale_init), x, variant).shape == x.shape


def test_plain_is_the_block():
    block, x = make_block(), tokens()
    torch.testing.assert_close(run(block, x, 'plain'), block(x))


def test_bad_variant_and_grid():
    with pytest.raises(ValueError, match='unknown dense variant'):
        run(make_block(), tokens(), 'segclip')
    with pytest.raises(ValueError, match='do not match'):
        last_block_forward(make_block(), tokens(), 'sclip', (4, 4), PREFIX)


@pytest.mark.parametrize('layer_scale_init', [None, 0.3])
def test_maskclip_output_depends_only_on_own_token(layer_scale_init):
    block, x = make_block(layer_scale_init), tokens()
    out = run(block, x, 'maskclip')
    perturbed = x.clone()
    perturbed[:, 5] += torch.randn(WIDTH)
    out_perturbed = run(block, perturbed, 'maskclip')
    changed = (out_perturbed - out).abs().amax(dim=(0, 2)) > 1e-6
    assert changed.tolist() == [i == 5 for i in range(x.shape[1])]


def test_layer_scale_scales_each_residual_branch():
    """Towers with LayerScale (not CLIP): SCLIP's two branches are each scaled."""
    block, x = make_block(0.3), tokens()
    q, k, v = block.attn.split_qkv(block.ln_1(x))
    with torch.no_grad():
        attention = ((q @ q.transpose(-2, -1) * 8**-0.5).softmax(-1) +
                     (k @ k.transpose(-2, -1) * 8**-0.5).softmax(-1))
        mid = x + 0.3 * block.attn.merge_heads(attention @ v)
        expected = mid + 0.3 * block.mlp(block.ln_2(mid))
    torch.testing.assert_close(run(block, x, 'sclip'), expected)


def test_neighbourhood_bias_is_naclips_window():
    torch.testing.assert_close(
        neighbourhood_bias(HW, PREFIX, std=5.0), ref_gaussian_omega(HW, 5.0))
    bias = neighbourhood_bias((3, 4), 1, std=1.0)
    patches = bias[1:, 1:]
    # Patch (0, 0): right neighbour exp(-1/2), diagonal neighbour exp(-1), two away exp(-2).
    torch.testing.assert_close(patches[0, [1, 5, 2]], torch.exp(torch.tensor([-0.5, -1.0, -2.0])))
