"""TextClassifier: name rules and template reduction written out, one cache and its
invalidation, padding trimming of causal towers, the on-disk cache and its safe loading."""
import os
import pickle

import pytest
import torch
import torch.nn.functional as F

from silc_seg.models.text_encoders import SILCTextTransformer
from silc_seg.models.utils import TextClassifier
# The SILC tests' tokenizer: one hashed id per word, end-of-text = VOCAB - 1 (the highest id, as
# CLIP's), zero padding to CONTEXT; counts its calls.
from .test_silc import CONTEXT, VOCAB, WordTokenizer

TEMPLATES = ['a photo of a {}.', 'a {} in the scene', 'there is the {} here']
VOCABULARY = [['cat'], ['dog', 'puppy', 'small hound'], ['red traffic light', 'signal']]


def tower(**overrides):
    torch.manual_seed(0)
    arch = dict(
        width=32, depth=2, num_heads=2, context_length=CONTEXT, vocab_size=VOCAB, output_dim=8)
    arch.update(overrides)
    model = SILCTextTransformer(arch=arch)
    model.init_weights()
    return model.eval()


class ForwardCounter:

    def __init__(self, module):
        self.count = 0
        module.register_forward_hook(self)

    def __call__(self, module, args, output):
        self.count += 1


def prompt_embedding(text_encoder, tokenizer, prompt):
    """e = normalize(tower(tokens)) of one prompt, on its full padded token row."""
    with torch.no_grad():
        return F.normalize(text_encoder(tokenizer([prompt]))[0], dim=-1)


@pytest.mark.slow
def test_name_rules_and_template_reduction_match_the_equations():
    text_encoder, tokenizer = tower(), WordTokenizer()

    def e(name, template):
        return prompt_embedding(text_encoder, tokenizer, template.format(name))

    def build(**kwargs):
        return TextClassifier(text_encoder, tokenizer, TEMPLATES, batch_size=4, **kwargs)

    # 'separate' + 'mean': one query per name, normalize(mean_p e(s, p)).
    separate = build()(VOCABULARY)
    names = [name for names in VOCABULARY for name in names]
    expected = torch.stack(
        [F.normalize(torch.stack([e(n, t) for t in TEMPLATES]).mean(0), dim=-1) for n in names])
    torch.testing.assert_close(separate.embeddings, expected, rtol=1e-5, atol=1e-6)
    assert separate.query_to_class == [0, 1, 1, 1, 2, 2]

    # 'average' + 'none': per template, normalize(sum_s e(s, p)).
    average = build(name_rule='average', template_reduction='none')(VOCABULARY)
    expected = torch.stack([
        torch.stack([F.normalize(sum(e(n, t) for n in names), dim=-1) for t in TEMPLATES])
        for names in VOCABULARY
    ])
    assert average.embeddings.shape == (3, len(TEMPLATES), 8)
    torch.testing.assert_close(average.embeddings, expected, rtol=1e-5, atol=1e-6)
    assert average.query_to_class == [0, 1, 2]

    # 'first' + 'none': per template, e(first name, p); the other names are never encoded.
    first = build(name_rule='first', template_reduction='none')(VOCABULARY)
    expected = torch.stack(
        [torch.stack([e(names[0], t) for t in TEMPLATES]) for names in VOCABULARY])
    torch.testing.assert_close(first.embeddings, expected, rtol=1e-5, atol=1e-6)
    assert first.query_to_class == [0, 1, 2]

    # 'average' + 'mean': normalize(mean_p normalize(sum_s e(s, p))).
    both = build(name_rule='average')(VOCABULARY)
    expected = F.normalize(
        torch.stack([
            torch.stack([F.normalize(sum(e(n, t) for n in names), dim=-1)
                         for t in TEMPLATES]).mean(0) for names in VOCABULARY
        ]),
        dim=-1)
    torch.testing.assert_close(both.embeddings, expected, rtol=1e-5, atol=1e-6)


def test_encode_is_differentiable_and_uncached():
    text_encoder, tokenizer = tower(), WordTokenizer()
    classifier = TextClassifier(
        text_encoder, tokenizer, TEMPLATES, name_rule='average', template_reduction='none')
    embeddings = classifier.encode(VOCABULARY).embeddings
    embeddings.sum().backward()
    assert text_encoder.positional_embedding.grad is not None
    assert classifier._cache is None


def test_cache_hit_miss_and_invalidation():
    text_encoder, tokenizer = tower(), WordTokenizer()
    forwards = ForwardCounter(text_encoder)
    classifier = TextClassifier(text_encoder, tokenizer, TEMPLATES, batch_size=100)
    first = classifier(VOCABULARY).embeddings
    assert forwards.count == 1
    # Hit: same request, same weights -> the same tensor, no forward.
    assert classifier(VOCABULARY).embeddings is first and forwards.count == 1
    # Miss: another vocabulary.
    other = classifier([['tree'], ['road']]).embeddings
    assert other.shape == (2, 8) and forwards.count == 2
    assert classifier(VOCABULARY).embeddings is not first and forwards.count == 3
    cached = classifier(VOCABULARY).embeddings

    # Under autocast the embeddings differ: computed anew, and the fp32 entry is not reused.
    with torch.autocast('cpu', dtype=torch.bfloat16):
        low_precision = classifier(VOCABULARY).embeddings
    assert forwards.count == 4 and not torch.equal(low_precision, cached)
    cached = classifier(VOCABULARY).embeddings
    assert forwards.count == 5

    # A training update of the tower (optimizer step) invalidates.
    optimizer = torch.optim.SGD(text_encoder.parameters(), lr=0.1)
    text_encoder.train()
    loss = text_encoder(tokenizer(['a cat'])).square().sum()
    loss.backward()
    optimizer.step()
    text_encoder.eval()
    forwards.count = 0
    updated = classifier(VOCABULARY).embeddings
    assert forwards.count == 1 and not torch.allclose(updated, cached)
    torch.testing.assert_close(updated, classifier.encode(VOCABULARY).embeddings)

    # Loading weights (even identical ones) invalidates.
    text_encoder.load_state_dict(text_encoder.state_dict())
    forwards.count = 0
    reloaded = classifier(VOCABULARY).embeddings
    assert forwards.count == 1 and reloaded is not updated

    # An in-place edit without autograd invalidates.
    with torch.no_grad():
        text_encoder.text_projection.weight.mul_(1.5).add_(0.01)
    forwards.count = 0
    edited = classifier(VOCABULARY).embeddings
    assert forwards.count == 1 and not torch.allclose(edited, reloaded)

    # An edit the fingerprint cannot see (rows swapped in place) needs invalidate().
    with torch.no_grad():
        weight = text_encoder.text_projection.weight
        weight[[0, 1]] = weight[[1, 0]]
    assert classifier(VOCABULARY).embeddings is edited
    classifier.invalidate()
    swapped = classifier(VOCABULARY).embeddings
    torch.testing.assert_close(swapped[:, [1, 0]], edited[:, [0, 1]])
    torch.testing.assert_close(swapped[:, 2:], edited[:, 2:])


def test_load_hook_follows_a_deep_copy():
    import copy
    text_encoder = tower()
    owner = torch.nn.Module()
    owner.text_encoder = text_encoder
    owner.classifier = TextClassifier(text_encoder, WordTokenizer(), TEMPLATES)
    twin = copy.deepcopy(owner)
    twin.load_state_dict(twin.state_dict())
    assert twin.classifier._num_loads == 1 and owner.classifier._num_loads == 0


@pytest.mark.slow
@pytest.mark.parametrize('pool_type', ['argmax', 'eos'])
def test_causal_tower_trims_padding_without_changing_the_output(pool_type):
    text_encoder = tower(pool_type=pool_type, eos_token_id=VOCAB - 1)
    token_ids = WordTokenizer()(['a cat', 'the very small red traffic light', 'dog'])
    trimmed = text_encoder.trim_padding(token_ids)
    assert trimmed.shape == (3, 7)  # 6 words + end-of-text of the longest prompt
    torch.testing.assert_close(trimmed, token_ids[:, :7])
    with torch.no_grad():
        torch.testing.assert_close(
            text_encoder(trimmed), text_encoder(token_ids), rtol=1e-5, atol=1e-6)
    # Through the classifier: the same as embedding every full padded row on its own.
    tokenizer = WordTokenizer()
    classifier = TextClassifier(text_encoder, tokenizer, TEMPLATES, batch_size=5)
    full_rows = torch.stack([
        torch.stack([prompt_embedding(text_encoder, tokenizer, t.format(n)) for t in TEMPLATES])
        for names in VOCABULARY for n in names
    ])
    torch.testing.assert_close(
        classifier(VOCABULARY).embeddings,
        F.normalize(full_rows.mean(1), dim=-1),
        rtol=1e-5,
        atol=1e-6)


def test_bidirectional_tower_is_never_trimmed():
    siglip_like = tower(causal=False, pool_type='last')
    token_ids = WordTokenizer()(['a cat', 'a dog here'])
    assert siglip_like.trim_padding(token_ids) is token_ids
    # Why: without the causal mask, the padding changes every token (cutting it would not be
    # the same computation).
    with torch.no_grad():
        full = siglip_like(token_ids)
        cut = siglip_like(token_ids[:, :4])
    assert not torch.allclose(full, cut, atol=1e-4)
    # A causal tower pooled at the first token is left alone too.
    first_pooled = tower(pool_type='first')
    assert first_pooled.trim_padding(token_ids) is token_ids


def test_disk_cache_round_trip_with_safe_loading(tmp_path):
    text_encoder, tokenizer = tower(), WordTokenizer()
    writer = TextClassifier(
        text_encoder, tokenizer, TEMPLATES, name_rule='average', cache_dir=str(tmp_path))
    written = writer(VOCABULARY)
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].endswith('.pth')
    # The file holds plain tensors and lists: it loads with weights_only=True.
    data = torch.load(tmp_path / files[0], weights_only=True)
    torch.testing.assert_close(data['embeddings'], written.embeddings, rtol=0, atol=0)

    # A fresh classifier on the same weights reads it instead of running the tower.
    forwards = ForwardCounter(text_encoder)
    reader = TextClassifier(
        text_encoder, tokenizer, TEMPLATES, name_rule='average', cache_dir=str(tmp_path))
    read = reader(VOCABULARY)
    assert forwards.count == 0
    torch.testing.assert_close(read.embeddings, written.embeddings, rtol=0, atol=0)
    assert read.query_to_class == written.query_to_class

    # Other weights, vocabulary or name rule -> other files.
    with torch.no_grad():
        text_encoder.text_projection.weight.add_(0.01)
    reader(VOCABULARY)
    TextClassifier(
        text_encoder, tokenizer, TEMPLATES, name_rule='first', cache_dir=str(tmp_path))(
            VOCABULARY)
    reader(VOCABULARY[:2])
    assert len(os.listdir(tmp_path)) == 4 and forwards.count == 3


class _Exploit:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def test_disk_cache_refuses_code_and_recomputes(tmp_path):
    text_encoder, tokenizer = tower(), WordTokenizer()
    classifier = TextClassifier(text_encoder, tokenizer, TEMPLATES, cache_dir=str(tmp_path))
    expected = classifier.encode(VOCABULARY).embeddings
    classifier(VOCABULARY)
    (path, ) = tmp_path.iterdir()
    marker = tmp_path / 'executed'
    with open(path, 'wb') as f:
        pickle.dump(
            dict(format=1, embeddings=_Exploit(str(marker)), query_to_class=[0]), f, protocol=2)
    fresh = TextClassifier(text_encoder, tokenizer, TEMPLATES, cache_dir=str(tmp_path))
    with pytest.warns(UserWarning, match='refused'):
        result = fresh(VOCABULARY)
    assert not marker.exists()
    torch.testing.assert_close(result.embeddings, expected)
    # The bad file was replaced by a good one.
    assert torch.load(path, weights_only=True)['embeddings'].shape == expected.shape
    # The payload is live: an unrestricted unpickler would have run it.
    pickle.loads(pickle.dumps(_Exploit(str(marker)), protocol=2))
    assert marker.exists()


def test_bad_settings_are_explicit():
    with pytest.raises(ValueError, match='name_rule'):
        TextClassifier(tower(), WordTokenizer(), TEMPLATES, name_rule='longest')
    with pytest.raises(ValueError, match='template_reduction'):
        TextClassifier(tower(), WordTokenizer(), TEMPLATES, template_reduction='max')
    with pytest.raises(ValueError, match='exactly one'):
        TextClassifier(tower(), WordTokenizer(), ['{} and {}'])
    with pytest.raises(ValueError, match='no name'):
        TextClassifier(tower(), WordTokenizer(), TEMPLATES).encode([['cat'], []])


def test_segmentors_pass_the_cache_directory_and_the_environment_default(tmp_path, monkeypatch):
    from tests.test_zero_shot.test_segmentor import build_segmentor
    model = build_segmentor(text_cache_dir=str(tmp_path / 'configured'))
    embeddings, _ = model.text_embeddings()
    (stored, ) = (tmp_path / 'configured').iterdir()
    torch.testing.assert_close(
        torch.load(stored, weights_only=True)['embeddings'], embeddings, rtol=0, atol=0)
    monkeypatch.setenv('SILC_SEG_TEXT_CACHE_DIR', str(tmp_path / 'from_env'))
    build_segmentor().text_embeddings()
    assert len(list((tmp_path / 'from_env').iterdir())) == 1
    monkeypatch.delenv('SILC_SEG_TEXT_CACHE_DIR')
    assert build_segmentor().text_classifier.cache_dir is None
