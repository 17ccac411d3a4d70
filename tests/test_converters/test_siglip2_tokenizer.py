"""GemmaTokenizer on a small SentencePiece model trained here with Gemma's special ids (pad 0,
eos 1, bos 2, unk 3): big_vision's ``lower|tok(length=64, bos='no', eos='sticky')`` written out
with the sentencepiece processor itself."""
import random

import pytest
import sentencepiece
import torch

from silc_seg.models.tokenizers import GemmaTokenizer

WORDS = ('a photo of the cat dog sky grass road car person tree building wall floor water '
         'mountain table chair window door bed lamp sign über straße zürich').split()


@pytest.fixture(scope='module')
def model_file(tmp_path_factory):
    root = tmp_path_factory.mktemp('gemma')
    rng = random.Random(0)
    lines = [' '.join(rng.choice(WORDS) for _ in range(rng.randint(2, 9))) for _ in range(400)]
    (root / 'corpus.txt').write_text('\n'.join(lines + [w.upper() for w in WORDS]))
    sentencepiece.SentencePieceTrainer.train(
        input=str(root / 'corpus.txt'),
        model_prefix=str(root / 'tiny'),
        vocab_size=90,
        hard_vocab_limit=False,
        pad_id=0,
        eos_id=1,
        bos_id=2,
        unk_id=3,
        character_coverage=1.0,
        minloglevel=2)
    return str(root / 'tiny.model')


def expected_ids(processor, text, length=64):
    # big_vision: ASCII lower-casing (tf.strings.lower), no BOS, EOS appended, the last
    # position kept for EOS when too long, padded with the pad id.
    lowered = ''.join(chr(ord(c) + 32) if 'A' <= c <= 'Z' else c for c in text)
    ids = processor.encode(lowered) + [processor.eos_id()]
    if len(ids) >= length:
        ids = ids[:length - 1] + [ids[-1]]
    return ids + [processor.pad_id()] * (length - len(ids))


def test_release_rules(model_file):
    tokenizer = GemmaTokenizer(model_file)
    processor = sentencepiece.SentencePieceProcessor(model_file=model_file)
    texts = [
        'A Photo of the CAT.', 'ÜBER Zürich', '', '  two   spaces ', ' '.join(['building'] * 80)
    ]
    ids = tokenizer(texts)
    assert ids.shape == (5, 64) and ids.dtype == torch.long
    for row, text in zip(ids.tolist(), texts):
        assert row == expected_ids(processor, text)
    assert ids[4, -1] == 1 and (ids[4] != 0).all()  # truncated: EOS kept, no padding
    assert ids[2].tolist() == [1] + [0] * 63
    # Only ASCII is lowered (as tf.strings.lower): 'Ü' stays upper case.
    assert tokenizer.encode('ÜBER') == processor.encode('Über') != processor.encode('über')


def test_canonicalize_mode_and_length(model_file):
    tokenizer = GemmaTokenizer(model_file, context_length=16, clean='canonicalize')
    processor = sentencepiece.SentencePieceProcessor(model_file=model_file)
    ids = tokenizer(['A photo, of the_cat!'])
    assert ids.shape == (1, 16)
    assert ids[0].tolist() == expected_ids(processor, 'a photo of the cat', 16)


def test_errors(tmp_path, model_file):
    with pytest.raises(
            FileNotFoundError, match=r'gemma_tokenizer\.model.*model\.tokenizer\.'
            r'model_file=PATH'):
        GemmaTokenizer(str(tmp_path / 'missing.model'))(['a cat'])
    with pytest.raises(ValueError, match='clean mode'):
        GemmaTokenizer(model_file, clean='lowercase')
    (tmp_path / 'c.txt').write_text('\n'.join(WORDS * 20))
    sentencepiece.SentencePieceTrainer.train(
        input=str(tmp_path / 'c.txt'),
        model_prefix=str(tmp_path / 'nopad'),
        vocab_size=60,
        hard_vocab_limit=False,
        pad_id=-1,
        minloglevel=2)
    with pytest.raises(ValueError, match='defines no padding token'):
        GemmaTokenizer(str(tmp_path / 'nopad.model'))(['a cat'])
