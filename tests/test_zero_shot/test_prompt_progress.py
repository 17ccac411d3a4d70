"""Prompt encoding shows its progress (a bar on a terminal, a log line per quarter otherwise)
without changing the embeddings; small vocabularies and the differentiable path stay quiet."""
import sys

import pytest
import torch

from silc_seg.models.utils import TextClassifier
from silc_seg.models.utils import text_classifier as module
from .toy_towers import ToyTextEncoder, ToyWordTokenizer

TEMPLATES = ['a photo of a {}.', 'a {} here', 'the {}', 'one {} there']
VOCABULARY = [['cat'], ['dog', 'puppy'], ['sky'], ['road'], ['tree']]  # 6 names x 4 = 24 prompts


@pytest.fixture
def classifier():
    torch.manual_seed(0)
    classifier = TextClassifier(ToyTextEncoder(), ToyWordTokenizer(), TEMPLATES, batch_size=5)
    classifier.progress_min_prompts = 10
    return classifier


@pytest.fixture
def messages(monkeypatch):
    logged = []
    monkeypatch.setattr(module, 'print_log', lambda message, **kwargs: logged.append(message))
    return logged


def test_log_lines_when_not_a_terminal(classifier, messages):
    embeddings = classifier(VOCABULARY).embeddings
    assert messages[0] == 'encoding 24 prompts in 5 batches'
    # Batches of 5: 5, 10, 15, 20, 24 prompts; a line when a quarter (6, 12, 18, 24) is passed.
    done = [line.split()[1] for line in messages[1:]]
    assert done == ['10/24', '15/24', '20/24', '24/24']
    assert [line.split()[2] for line in messages[1:]] == ['(25%),', '(50%),', '(75%),', '(100%),']
    torch.testing.assert_close(
        embeddings, classifier.encode(VOCABULARY).embeddings, rtol=0, atol=0)
    assert len(messages) == 5  # encode(), the training path, printed nothing


def test_quiet_below_the_threshold_and_when_cached(classifier, messages):
    classifier.progress_min_prompts = 25
    classifier(VOCABULARY)
    assert messages == []
    classifier.progress_min_prompts = 10
    classifier(VOCABULARY)  # in memory: nothing encoded
    assert messages == []


def test_progress_bar_on_a_terminal(classifier, messages, monkeypatch, capsys):
    monkeypatch.setattr(sys.stdout, 'isatty', lambda: True)
    classifier(VOCABULARY)
    out = capsys.readouterr().out
    assert messages == []
    assert out.startswith('encoding 24 prompts in 5 batches\n')
    assert '24/24' in out and out.endswith('\n')
