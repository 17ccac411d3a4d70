"""CLIP's byte-pair-encoding tokenizer."""
from functools import lru_cache
from typing import List, Sequence

import regex as re
import torch
from mmseg.utils.tokenizer import SimpleTokenizer, basic_clean

from silc_seg.registry import MODELS


@lru_cache(maxsize=None)
def _shared_bpe(bpe_path: str) -> SimpleTokenizer:
    # Reading the 262k merges takes a while; every CLIPTokenizer of a process shares them.
    return SimpleTokenizer(bpe_path) if bpe_path else SimpleTokenizer()


def clean_lower(text: str) -> str:
    """OpenCLIP's default text cleaning: ftfy, HTML unescaping, whitespace collapsing (on
    ``str.split`` whitespace), lower case."""
    return ' '.join(basic_clean(text).split()).lower()


@MODELS.register_module()
class CLIPTokenizer:
    """CLIP BPE tokenizer (vocabulary of 49408, MMSeg's copy of OpenAI's merges), identical
    to ``open_clip.tokenize``: ``<start_of_text> tokens <end_of_text>``, zero padded; texts
    that are too long are truncated and still end with ``<end_of_text>``.

    Args:
        context_length (int): output length. Defaults to 77.
        bpe_path (str, optional): BPE merges file; MMSeg's ``bpe_simple_vocab_16e6.txt.gz``
            by default.
    """

    def __init__(self, context_length: int = 77, bpe_path: str = ''):
        if context_length < 2:
            raise ValueError(f'context_length must fit the start and end tokens, '
                             f'got {context_length}')
        self.context_length = context_length
        self.bpe = _shared_bpe(bpe_path)
        self.sot_token_id = self.bpe.encoder['<start_of_text>']
        self.eot_token_id = self.bpe.encoder['<end_of_text>']
        self.vocab_size = self.bpe.vocab_size

    def encode(self, text: str) -> List[int]:
        """BPE ids of one text, without start/end tokens."""
        ids = []
        for word in re.findall(self.bpe.pat, clean_lower(text)):
            word = ''.join(self.bpe.byte_encoder[b] for b in word.encode('utf-8'))
            ids.extend(self.bpe.encoder[piece] for piece in self.bpe.bpe(word).split(' '))
        return ids

    def decode(self, token_ids: Sequence[int]) -> str:
        """Text of token ids up to the end token (start/end tokens included as text); the
        zero padding after it is dropped (inside a text, id 0 is ``!``)."""
        ids = [int(i) for i in token_ids]
        if self.eot_token_id in ids:
            ids = ids[:ids.index(self.eot_token_id) + 1]
        return self.bpe.decode(ids)

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """Tokenize texts.

        Args:
            texts (Sequence[str] | str): texts.

        Returns:
            torch.LongTensor: ``(N, context_length)`` token ids.
        """
        if isinstance(texts, str):
            texts = [texts]
        result = torch.zeros(len(texts), self.context_length, dtype=torch.long)
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f'texts must be strings, got {type(text).__name__}: {text!r}')
            ids = [self.sot_token_id] + self.encode(text) + [self.eot_token_id]
            if len(ids) > self.context_length:
                ids = ids[:self.context_length - 1] + [self.eot_token_id]
            result[row, :len(ids)] = torch.tensor(ids)
        return result

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(context_length={self.context_length})'
