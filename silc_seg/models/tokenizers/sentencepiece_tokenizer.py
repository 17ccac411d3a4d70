"""SentencePiece tokenizer of SigLIP / big_vision text towers."""
import html
import os.path as osp
import string
from typing import List, Optional

import ftfy

from silc_seg.registry import MODELS
from .base_tokenizer import BaseTokenizer

_PUNCTUATION = str.maketrans('', '', string.punctuation)


def clean_canonicalize(text: str) -> str:
    """big_vision's (and OpenCLIP's SigLIP) cleaning: ftfy and HTML unescaping, underscores to
    spaces, punctuation removed, lower case, whitespace collapsed."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    text = text.replace('_', ' ').translate(_PUNCTUATION).lower()
    return ' '.join(text.split())


@MODELS.register_module()
class SentencePieceTokenizer(BaseTokenizer):
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
        super().__init__(context_length)
        self.model_file = model_file
        self.canonicalize = canonicalize
        self._pad_id = pad_id
        # Read on first use, so that a model whose text is never tokenised (the image tower of
        # a converted SigLIP checkpoint) builds without the vocabulary file.
        self._processor = None

    @property
    def processor(self):
        """The SentencePiece processor, loaded from ``model_file`` on first use."""
        if self._processor is None:
            try:
                import sentencepiece
            except ImportError as error:
                raise ImportError('SentencePieceTokenizer needs sentencepiece: '
                                  'pip install -r requirements/optional.txt') from error
            if not osp.isfile(self.model_file):
                raise FileNotFoundError(
                    f'SentencePiece model {self.model_file!r} not found: tokenising text needs '
                    'the vocabulary the text tower was trained with. For SigLIP, download the T5 '
                    'English vocabulary https://storage.googleapis.com/t5-data/vocabs/'
                    f'cc_en.32000/sentencepiece.model to {self.model_file} (relative to the '
                    'working directory), or point the config at your copy with --cfg-options '
                    'model.tokenizer.model_file=PATH '
                    '(see configs/_base_/models/siglip_vit-b-16.py)')
            processor = sentencepiece.SentencePieceProcessor(model_file=self.model_file)
            if processor.eos_id() < 0:
                raise ValueError(f'{self.model_file} defines no end-of-sequence token')
            self._processor = processor
        return self._processor

    @property
    def eos_id(self) -> int:
        """End-of-sequence id (appended to every text)."""
        return self.processor.eos_id()

    @property
    def end_id(self) -> int:
        """The end-of-sequence id."""
        return self.eos_id

    @property
    def pad_id(self) -> int:
        """Padding id: the one given, else the end-of-sequence id."""
        return self.eos_id if self._pad_id is None else self._pad_id

    @property
    def vocab_size(self) -> int:
        """Number of pieces of the vocabulary."""
        return self.processor.get_piece_size()

    def encode(self, text: str) -> List[int]:
        """Piece ids of one cleaned text, without the end token."""
        text = clean_canonicalize(text) if self.canonicalize else ' '.join(text.split())
        return self.processor.encode(text)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(model_file={self.model_file!r}, '
                f'context_length={self.context_length})')
