from .base_tokenizer import BaseTokenizer
from .clip_tokenizer import CLIPTokenizer
from .gemma_tokenizer import GemmaTokenizer
from .sentencepiece_tokenizer import SentencePieceTokenizer

__all__ = ['BaseTokenizer', 'CLIPTokenizer', 'GemmaTokenizer', 'SentencePieceTokenizer']
