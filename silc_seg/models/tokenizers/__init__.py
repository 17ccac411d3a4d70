from .clip_tokenizer import CLIPTokenizer
from .gemma_tokenizer import GemmaTokenizer
from .sentencepiece_tokenizer import SentencePieceTokenizer

__all__ = ['CLIPTokenizer', 'GemmaTokenizer', 'SentencePieceTokenizer']
