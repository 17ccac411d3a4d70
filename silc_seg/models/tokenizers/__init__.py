from .clip_tokenizer import CLIPTokenizer
from .sentencepiece_tokenizer import SentencePieceTokenizer

__all__ = ['CLIPTokenizer', 'SentencePieceTokenizer']
