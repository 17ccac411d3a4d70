"""SILCTextTransformer: presets, causal vs bidirectional attention, pooling, input checks.
(Exact equality with OpenCLIP's text towers is tested with the converters in
tests/test_converters.)"""
import pytest
import torch

from silc_seg.models.text_encoders import SILCTextTransformer
from silc_seg.registry import MODELS


def small_text(**kwargs):
    torch.manual_seed(0)
    cfg = dict(
        arch=dict(width=32, depth=2, num_heads=2), context_length=12, vocab_size=50, output_dim=16)
    cfg.update(kwargs)
    return SILCTextTransformer(**cfg).eval()


@pytest.mark.slow
def test_presets():
    tower = SILCTextTransformer(arch='siglip-b', depth=1)
    assert (tower.context_length, tower.vocab_size, tower.causal,
            tower.pool_type) == (64, 32000, False, 'last')
    assert tower.text_projection.bias is not None
    assert tower.ln_final.eps == 1e-6
    clip = SILCTextTransformer(arch='clip-b', depth=1)
    assert clip.causal and clip.pool_type == 'argmax' and clip.text_projection.bias is None
    assert clip.output_dim == 512 and clip.positional_embedding.shape == (77, 512)
    with pytest.raises(ValueError, match='unknown arch'):
        SILCTextTransformer(arch='gpt')
    with pytest.raises(ValueError, match='unknown arch keys'):
        SILCTextTransformer(arch=dict(width=8, depth=1, num_heads=2, heads=3))
    with pytest.raises(ValueError, match='eos_token_id'):
        SILCTextTransformer(arch='tiny', pool_type='eos')


def test_causal_tower_ignores_tokens_after_end_token():
    tower = small_text()
    ids = torch.tensor([[1, 5, 7, 49, 0, 0], [1, 8, 49, 0, 0, 0]])
    changed = ids.clone()
    changed[:, 4:] = torch.tensor([3, 4])
    out = tower(ids)
    assert out.shape == (2, 16)
    torch.testing.assert_close(tower(changed), out)
    # Changing a token before the end token changes the embedding.
    changed[0, 1] = 6
    assert not torch.allclose(tower(changed)[0], out[0])


def test_bidirectional_tower_sees_every_token():
    tower = small_text(causal=False, pool_type='last')
    ids = torch.tensor([[1, 5, 7, 49, 2, 2]])
    changed = ids.clone()
    changed[0, 1] = 6
    assert not torch.allclose(tower(changed), tower(ids))


def test_pooling_picks_the_right_token():
    tower = small_text(output_dim=0)
    assert isinstance(tower.text_projection, torch.nn.Identity) and tower.output_dim == 32
    ids = torch.tensor([[1, 5, 49, 0], [1, 9, 8, 49]])
    x = tower.token_embedding(ids) + tower.positional_embedding[:4]
    for block in tower.blocks:
        x = block(x, is_causal=True)
    x = tower.ln_final(x)
    torch.testing.assert_close(tower(ids), torch.stack([x[0, 2], x[1, 3]]))
    eos = small_text(output_dim=0, pool_type='eos', eos_token_id=5)
    torch.testing.assert_close(eos(ids[:1]), x[:1, 1])
    with pytest.raises(ValueError, match='no end-of-text token'):
        eos(ids[1:])


def test_with_cp_gives_identical_gradients():
    ids = torch.tensor([[1, 5, 7, 49, 0], [1, 8, 49, 0, 0]])
    grads = []
    for with_cp in (False, True):
        tower = small_text(with_cp=with_cp).train()
        tower(ids).square().sum().backward()
        grads.append({n: p.grad.clone() for n, p in tower.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], msg=name)


def test_input_checks():
    tower = small_text()
    with pytest.raises(ValueError, match='exceed the context length'):
        tower(torch.ones(1, 13, dtype=torch.long))
    with pytest.raises(ValueError, match=r'\(N, L\)'):
        tower(torch.ones(4, dtype=torch.long))
    assert tower(torch.tensor([[1, 49]])).shape == (1, 16)


def test_registry_build_and_encode_text_alias():
    tower = MODELS.build(dict(type='SILCTextTransformer', arch='tiny', depth=1))
    ids = torch.tensor([[49406, 320, 49407]])
    torch.testing.assert_close(tower.encode_text(ids), tower(ids))
