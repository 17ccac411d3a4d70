"""Inside TextClassifier.frozen() (entered by ModelDatasetMetaHook for every val / test run) the
text weights are fingerprinted once, not per batch; what must still be seen is seen: another
vocabulary, a checkpoint load, edits after the block."""
from types import SimpleNamespace

import torch

from silc_seg.engine.hooks.model_dataset_meta_hook import ModelDatasetMetaHook
from silc_seg.models.utils import TextClassifier
from .test_segmentor import build_segmentor
from .toy_towers import ToyTextEncoder, ToyWordTokenizer

VOCABULARY = [['cat'], ['dog', 'puppy'], ['sky']]


def counted_classifier(monkeypatch):
    torch.manual_seed(0)
    classifier = TextClassifier(ToyTextEncoder(), ToyWordTokenizer(), 'short')
    calls = []
    real = classifier.weights_version
    monkeypatch.setattr(classifier, 'weights_version', lambda: calls.append(1) or real())
    return classifier, calls


def test_frozen_fingerprints_once(monkeypatch):
    classifier, calls = counted_classifier(monkeypatch)
    tower = classifier.text_encoder
    first = classifier(VOCABULARY).embeddings
    with classifier.frozen():
        for _ in range(3):
            assert classifier(VOCABULARY).embeddings is first
        assert len(calls) == 2  # one before the block, one on its first request
        forwards = tower.num_calls
        other = classifier([['road'], ['tree']]).embeddings  # another vocabulary: encoded
        assert tower.num_calls > forwards and other.shape[0] == 2 and len(calls) == 3
        # A checkpoint load inside the block is seen on the next request.
        state = {key: value + 1 for key, value in tower.state_dict().items()}
        tower.load_state_dict(state)
        reloaded = classifier([['road'], ['tree']]).embeddings
        assert not torch.allclose(reloaded, other) and len(calls) == 4
    with torch.no_grad():
        tower.token_embedding.weight.mul_(2).add_(1)  # an edit after the block: seen again
    edited = classifier([['road'], ['tree']]).embeddings
    assert len(calls) == 5 and not torch.allclose(edited, reloaded)
    expected = classifier.encode([['road'], ['tree']]).embeddings
    torch.testing.assert_close(edited, expected)


def test_hook_freezes_for_the_test_run_only(monkeypatch):
    model = build_segmentor(class_names=None)
    loop = SimpleNamespace(
        dataloader=SimpleNamespace(dataset=SimpleNamespace(metainfo=dict(classes=('cat', 'sky')))))
    runner = SimpleNamespace(model=model, test_loop=loop, val_loop=loop)
    hook = ModelDatasetMetaHook()
    for before, after in ((hook.before_test, hook.after_test), (hook.before_val, hook.after_val)):
        before(runner)
        assert model.text_classifier._frozen == 1 and model.vocabulary == [['cat'], ['sky']]
        after(runner)
        assert model.text_classifier._frozen == 0
