from .base_tokenizer import BaseTokenizer
from .clip_tokenizer import CLIPTokenizer
from .sentencepiece_tokenizer import SentencePieceTokenizer

__all__ = ['BaseTokenizer', 'CLIPTokenizer', 'SentencePieceTokenizer']
