"""Dense last-block variants (MaskCLIP, SCLIP, ClearCLIP, NACLIP): shapes and defining
properties, on the towers' own TransformerBlock."""
import pytest
import torch

from silc_seg.models.layers.dense_attention import (DENSE_VARIANTS,
                                                    last_block_forward,
                                                    neighbourhood_bias)
from silc_seg.models.layers.transformer import TransformerBlock

HW = (3, 4)
PREFIX = 1


def make_block(layer_scale_init=None):
    torch.manual_seed(0)
    block = TransformerBlock(32, 4, layer_scale_init=layer_scale_init).eval()
    with torch.no_grad():  # non-trivial LayerNorm affine parameters
        for norm in (block.ln_1, block.ln_2):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_()
    return block


def tokens():
    torch.manual_seed(1)
    return torch.randn(2, PREFIX + HW[0] * HW[1], 32)


def run(block, x, variant):
    with torch.no_grad():
        return last_block_forward(block, x, variant, HW, PREFIX)


def manual_attention_output(block, x, attention_of):
    """proj(softmax-weights @ v) with q, k, v computed by hand from the qkv weights."""
    y = block.ln_1(x)
    q, k, v = (block.attn.qkv(y).view(2, x.shape[1], 3, 4, 8).permute(2, 0, 3, 1, 4))
    weights = attention_of(q, k)
    out = (weights @ v).transpose(1, 2).reshape(2, x.shape[1], 32)
    return block.attn.proj(out)


def sim(a):
    return (a @ a.transpose(-2, -1)) / 8**0.5


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
    perturbed[:, 5] += torch.randn(32)
    out_perturbed = run(block, perturbed, 'maskclip')
    changed = (out_perturbed - out).abs().amax(dim=(0, 2)) > 1e-6
    assert changed.tolist() == [i == 5 for i in range(x.shape[1])]
    # It is the value path: the block with attention weights replaced by the identity.
    with torch.no_grad():
        eye = lambda q, k: torch.eye(x.shape[1]).expand(2, 4, -1, -1)  # noqa: E731
        mid = x + block.ls_1(manual_attention_output(block, x, eye))
        torch.testing.assert_close(out, mid + block.ls_2(block.mlp(block.ln_2(mid))))


def test_sclip_correlative_attention_with_residual_without_ffn():
    block, x = make_block(0.3), tokens()
    out = run(block, x, 'sclip')
    with torch.no_grad():
        csa = lambda q, k: sim(q).softmax(-1) + sim(k).softmax(-1)  # noqa: E731
        torch.testing.assert_close(out, x + block.ls_1(manual_attention_output(block, x, csa)))
        block.mlp.fc2.weight.mul_(3.0)  # no FFN: changing it changes nothing
    torch.testing.assert_close(run(block, x, 'sclip'), out)


def test_clearclip_qq_attention_without_residual_or_ffn():
    block, x = make_block(0.3), tokens()
    out = run(block, x, 'clearclip')
    with torch.no_grad():
        qq = lambda q, k: sim(q).softmax(-1)  # noqa: E731
        torch.testing.assert_close(out, block.ls_1(manual_attention_output(block, x, qq)))
        # No residual: the output is the projected attention output alone, so it is
        # unchanged when the keys' weights (unused) or the FFN change.
        block.attn.qkv.weight[32:64].normal_()
        block.mlp.fc1.weight.normal_()
    torch.testing.assert_close(run(block, x, 'clearclip'), out)


def test_naclip_neighbourhood_kk_attention_reduced_block():
    block, x = make_block(), tokens()
    out = run(block, x, 'naclip')
    bias = neighbourhood_bias(HW, PREFIX, std=5.0)
    with torch.no_grad():
        kk = lambda q, k: (sim(k) + bias).softmax(-1)  # noqa: E731
        torch.testing.assert_close(out, manual_attention_output(block, x, kk))
        block.attn.qkv.weight[:32].normal_()  # queries unused
        block.mlp.fc1.weight.normal_()  # no FFN
    torch.testing.assert_close(run(block, x, 'naclip'), out)


def test_neighbourhood_bias():
    bias = neighbourhood_bias((3, 4), 1, std=1.0)
    assert bias.shape == (13, 13)
    assert (bias[0] == 0).all() and (bias[:, 0] == 0).all()  # the class token gets no bias
    patches = bias[1:, 1:]
    torch.testing.assert_close(patches, patches.T)
    assert (patches.diagonal() == 1).all()
    # Patch (0, 0): right neighbour exp(-1/2), diagonal neighbour exp(-1), two away exp(-2).
    torch.testing.assert_close(patches[0, [1, 5, 2]],
                               torch.exp(torch.tensor([-0.5, -1.0, -2.0])))
