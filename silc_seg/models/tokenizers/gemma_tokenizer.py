"""Gemma SentencePiece tokenizer of the SigLIP 2 text towers."""
import os.path as osp
from typing import List

from silc_seg.registry import MODELS
from .sentencepiece_tokenizer import SentencePieceTokenizer, clean_canonicalize

CLEAN_MODES = ('lower', 'canonicalize')
_ASCII_UPPER = str.maketrans('ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')


def ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only, as ``tf.strings.lower`` (no encoding) does in big_vision's
    ``lower`` op; other characters are left as they are."""
    return text.translate(_ASCII_UPPER)


@MODELS.register_module()
class GemmaTokenizer(SentencePieceTokenizer):
    """The SigLIP 2 tokenizer: Gemma's 256k SentencePiece vocabulary, no BOS, the end token
    appended and kept when truncating, padded with the vocabulary's pad id to 64 tokens.

    That is big_vision's ``lower(key="text")|tok(length=64, model="gemma", bos="no",
    eos="sticky")`` of ``SigLIP2_demo.ipynb``.

    Args:
        model_file (str): Gemma ``tokenizer.model`` (SentencePiece).
        context_length (int): output length. Defaults to 64.
        clean (str): ``'lower'`` (the release: ASCII lower-casing only, see
            :func:`ascii_lower`) or ``'canonicalize'`` (open_clip's ``ViT-*-SigLIP2`` configs:
            :func:`clean_canonicalize`, which also drops punctuation). Defaults to ``'lower'``.
    """

    def __init__(self,
                 model_file: str = 'checkpoints/siglip2/gemma_tokenizer.model',
                 context_length: int = 64,
                 clean: str = 'lower'):
        if clean not in CLEAN_MODES:
            raise ValueError(f'unknown clean mode {clean!r}; choose from {CLEAN_MODES}')
        super().__init__(model_file, context_length=context_length)
        self.clean = clean

    @property
    def processor(self):
        """The SentencePiece processor; the Gemma model must define end and pad ids."""
        if self._processor is None:
            if not osp.isfile(self.model_file):
                raise FileNotFoundError(
                    f'Gemma SentencePiece model {self.model_file!r} not found: tokenising text '
                    'needs the vocabulary the SigLIP 2 text tower was trained with. Download '
                    'https://storage.googleapis.com/big_vision/gemma_tokenizer.model (or the '
                    'tokenizer.model of a timm/ViT-*-SigLIP2 Hugging Face repository) to '
                    f'{self.model_file} (relative to the working directory), or point the '
                    'config at your copy with --cfg-options model.tokenizer.model_file=PATH '
                    '(see docs/siglip2.md)')
            processor = super().processor
            if processor.pad_id() < 0:
                self._processor = None
                raise ValueError(f'{self.model_file} defines no padding token (Gemma: 0)')
        return self._processor

    @property
    def pad_id(self) -> int:
        """The vocabulary's padding id (Gemma: 0)."""
        return self.processor.pad_id()

    def encode(self, text: str) -> List[int]:
        """Piece ids of one cleaned text, without the end token."""
        text = ascii_lower(text) if self.clean == 'lower' else clean_canonicalize(text)
        return self.processor.encode(text)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(model_file={self.model_file!r}, '
                f'context_length={self.context_length}, clean={self.clean!r})')
