"""CLIP's byte-pair-encoding tokenizer."""
from functools import lru_cache
from typing import List, Sequence

import regex as re
from mmseg.utils.tokenizer import SimpleTokenizer, basic_clean

from silc_seg.registry import MODELS
from .base_tokenizer import BaseTokenizer


@lru_cache(maxsize=None)
def _shared_bpe(bpe_path: str) -> SimpleTokenizer:
    # Reading the 262k merges takes a while; every CLIPTokenizer of a process shares them.
    return SimpleTokenizer(bpe_path) if bpe_path else SimpleTokenizer()


def clean_lower(text: str) -> str:
    """OpenCLIP's default text cleaning: ftfy, HTML unescaping, whitespace collapsing (on
    ``str.split`` whitespace), lower case."""
    return ' '.join(basic_clean(text).split()).lower()


@MODELS.register_module()
class CLIPTokenizer(BaseTokenizer):
    """CLIP BPE tokenizer (vocabulary of 49408, MMSeg's copy of OpenAI's merges), identical
    to ``open_clip.tokenize``: ``<start_of_text> tokens <end_of_text>``, zero padded; texts
    that are too long are truncated and still end with ``<end_of_text>``.

    Args:
        context_length (int): output length. Defaults to 77.
        bpe_path (str, optional): BPE merges file; MMSeg's ``bpe_simple_vocab_16e6.txt.gz``
            by default.
    """

    def __init__(self, context_length: int = 77, bpe_path: str = ''):
        super().__init__(context_length, min_context_length=2)
        self.bpe = _shared_bpe(bpe_path)
        self.sot_token_id = self.bpe.encoder['<start_of_text>']
        self.eot_token_id = self.bpe.encoder['<end_of_text>']
        self.vocab_size = self.bpe.vocab_size

    @property
    def start_ids(self) -> List[int]:
        """``<start_of_text>``."""
        return [self.sot_token_id]

    @property
    def end_id(self) -> int:
        """``<end_of_text>``."""
        return self.eot_token_id

    @property
    def pad_id(self) -> int:
        """Zero, as OpenCLIP."""
        return 0

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
