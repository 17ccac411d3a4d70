"""Tokenizers: CLIP BPE against OpenCLIP's, SentencePiece against the raw processor."""
import pytest
import torch

from silc_seg.models.tokenizers import CLIPTokenizer, SentencePieceTokenizer
from silc_seg.registry import MODELS

TEXTS = [
    'a photo of a cat.',
    'A PHOTO of   the\tdog\n',
    "it's a bad photo of the aeroplane's wing",
    'caf\u00e9 na\u00efve \u00fcber \u6771\u4eac \U0001F600',
    'fish &amp; chips &lt;3 &amp;amp;',
    'numbers 12345 and symbols !?@#$%^&*()',
    'mis\u00adsing s\u00a0p\u2003a\u2029ces',
    '',
    ' '.join(['word'] * 100),
]


def test_clip_tokenizer_matches_open_clip():
    import open_clip
    tokenizer = MODELS.build(dict(type='CLIPTokenizer', context_length=77))
    ours = tokenizer(TEXTS)
    assert ours.dtype == torch.long and ours.shape == (len(TEXTS), 77)
    torch.testing.assert_close(ours, open_clip.tokenize(TEXTS), rtol=0, atol=0)
    short = CLIPTokenizer(context_length=16)
    torch.testing.assert_close(
        short(TEXTS), open_clip.tokenize(TEXTS, context_length=16), rtol=0, atol=0)


def test_clip_tokenizer_truncation_keeps_end_token():
    tokenizer = CLIPTokenizer(context_length=8)
    ids = tokenizer([' '.join(['dog'] * 20), 'dog'])
    assert ids[0, 0] == tokenizer.sot_token_id and ids[0, -1] == tokenizer.eot_token_id
    assert (ids[0, 1:-1] == tokenizer.encode('dog')[0]).all()
    assert ids[1].tolist() == [49406, tokenizer.encode('dog')[0], 49407, 0, 0, 0, 0, 0]
    assert tokenizer.decode(ids[1]).strip() == '<start_of_text>dog <end_of_text>'
    assert tokenizer.decode(tokenizer(['hi!'])[0]) == '<start_of_text>hi ! <end_of_text>'
    with pytest.raises(TypeError, match='strings'):
        tokenizer(['ok', 3])
    with pytest.raises(ValueError, match='context_length'):
        CLIPTokenizer(context_length=1)


@pytest.fixture(scope='module')
def sentencepiece_model(tmp_path_factory):
    import sentencepiece
    folder = tmp_path_factory.mktemp('spm')
    corpus = folder / 'corpus.txt'
    words = ['cat', 'dog', 'photo', 'of', 'a', 'the', 'picture', 'bird', 'car', 'house']
    lines = [' '.join(words[(i * 7 + j) % len(words)] for j in range(6)) for i in range(200)]
    corpus.write_text('\n'.join(lines))
    prefix = str(folder / 'tiny')
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=prefix,
        vocab_size=28,
        model_type='unigram',
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        minloglevel=2)
    return prefix + '.model', sentencepiece.SentencePieceProcessor(model_file=prefix + '.model')


def test_sentencepiece_tokenizer(sentencepiece_model):
    model_file, processor = sentencepiece_model
    tokenizer = MODELS.build(
        dict(type='SentencePieceTokenizer', model_file=model_file, context_length=10))
    ids = tokenizer(['A photo of the  Dog!', 'cat_car', ' '.join(['bird'] * 30)])
    assert ids.shape == (3, 10) and ids.dtype == torch.long
    expected = processor.encode('a photo of the dog') + [1]
    assert ids[0].tolist() == expected + [1] * (10 - len(expected))  # padded with end tokens
    assert ids[1, :len(processor.encode('cat car')) +
               1].tolist() == processor.encode('cat car') + [1]
    assert ids[2, -1] == 1 and (ids[2, :-1] != 1).all()  # truncated, end token kept
    zero_padded = SentencePieceTokenizer(model_file, context_length=10, pad_id=0)
    assert zero_padded(['dog'])[0].tolist()[-1] == 0
    # The vocabulary is read on first tokenisation: building needs no file, tokenising says
    # where the file goes.
    missing = SentencePieceTokenizer(model_file + '.missing')
    with pytest.raises(FileNotFoundError, match=r'not found.*cc_en\.32000.*\.missing'):
        missing(['dog'])
    raw = SentencePieceTokenizer(model_file, context_length=10, canonicalize=False)
    assert raw(['Dog!'])[0].tolist() != ids[0].tolist()


def test_base_tokenizer_frames_truncates_and_pads():
    from silc_seg.models.tokenizers import BaseTokenizer

    class Characters(BaseTokenizer):
        start_ids = [7]
        end_id = 8
        pad_id = 9

        def encode(self, text):
            return [ord(c) - ord('a') + 10 for c in text]

    tokenizer = Characters(context_length=5, min_context_length=2)
    assert tokenizer(['ab', 'abcdef', '']).tolist() == [[7, 10, 11, 8, 9], [7, 10, 11, 12, 8],
                                                        [7, 8, 9, 9, 9]]
    assert tokenizer('a').shape == (1, 5)
    with pytest.raises(ValueError, match='at least 2'):
        Characters(context_length=1, min_context_length=2)
    with pytest.raises(TypeError):
        BaseTokenizer(4)  # encode, end_id and pad_id are the subclass's
