"""SentencePiece tokenizer of SigLIP / big_vision text towers."""
import html
import os.path as osp
import string
from typing import List, Optional, Sequence

import ftfy
import torch

from silc_seg.registry import MODELS

_PUNCTUATION = str.maketrans('', '', string.punctuation)


def clean_canonicalize(text: str) -> str:
    """big_vision's (and OpenCLIP's SigLIP) cleaning: ftfy and HTML unescaping, underscores to
    spaces, punctuation removed, lower case, whitespace collapsed."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    text = text.replace('_', ' ').translate(_PUNCTUATION).lower()
    return ' '.join(text.split())


@MODELS.register_module()
class SentencePieceTokenizer:
    """SentencePiece tokenizer as used by SigLIP: canonicalized text, an end-of-sequence token
    appended, truncated (keeping the end token) and padded to ``context_length``.

    SigLIP pads with the end token (``pad_id=None``), which is why its text tower pools the last
    position.

    Args:
        model_file (str): SentencePiece ``.model`` file (SigLIP English: the T5 ``cc_en.32000``
            vocabulary).
        context_length (int): output length. Defaults to 64.
        pad_id (int, optional): padding id; None: the end-of-sequence id.
        canonicalize (bool): apply :func:`clean_canonicalize`; otherwise only whitespace is
            collapsed. Defaults to True.
    """

    def __init__(self,
                 model_file: str,
                 context_length: int = 64,
                 pad_id: Optional[int] = None,
                 canonicalize: bool = True):
        try:
            import sentencepiece
        except ImportError as error:
            raise ImportError('SentencePieceTokenizer needs sentencepiece: '
                              'pip install -r requirements/optional.txt') from error
        if context_length < 1:
            raise ValueError(f'context_length must be positive, got {context_length}')
        if not osp.isfile(model_file):
            raise FileNotFoundError(
                f'SentencePiece model {model_file!r} not found (SigLIP: the T5 cc_en.32000 '
                'vocabulary, see configs/_base_/models/siglip_vit-b-16.py)')
        self.model_file = model_file
        self.processor = sentencepiece.SentencePieceProcessor(model_file=model_file)
        self.eos_id = self.processor.eos_id()
        if self.eos_id < 0:
            raise ValueError(f'{model_file} defines no end-of-sequence token')
        self.pad_id = self.eos_id if pad_id is None else pad_id
        self.context_length = context_length
        self.canonicalize = canonicalize
        self.vocab_size = self.processor.get_piece_size()

    def encode(self, text: str) -> List[int]:
        """Piece ids of one cleaned text, without the end token."""
        text = clean_canonicalize(text) if self.canonicalize else ' '.join(text.split())
        return self.processor.encode(text)

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """Tokenize texts.

        Args:
            texts (Sequence[str] | str): texts.

        Returns:
            torch.LongTensor: ``(N, context_length)`` token ids.
        """
        if isinstance(texts, str):
            texts = [texts]
        result = torch.full((len(texts), self.context_length), self.pad_id, dtype=torch.long)
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f'texts must be strings, got {type(text).__name__}: {text!r}')
            ids = self.encode(text)[:self.context_length - 1] + [self.eos_id]
            result[row, :len(ids)] = torch.tensor(ids)
        return result

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(model_file={self.model_file!r}, '
                f'context_length={self.context_length})')
