"""What every text tokenizer shares: framing, truncation and padding to a fixed length."""
from abc import ABCMeta, abstractmethod
from typing import List, Sequence

import torch


class BaseTokenizer(metaclass=ABCMeta):
    """A text becomes ``start_ids + encode(text) + [end_id]``, truncated to ``context_length``
    keeping the end id last, then padded with ``pad_id``. Subclasses define the vocabulary:
    :meth:`encode`, :attr:`end_id`, :attr:`pad_id` and, where there is one, :attr:`start_ids`.

    Args:
        context_length (int): output length.
        min_context_length (int): the shortest length that fits the special ids.
    """

    def __init__(self, context_length: int, min_context_length: int = 1):
        if context_length < min_context_length:
            raise ValueError(f'context_length must be at least {min_context_length} (to fit '
                             f'the special tokens), got {context_length}')
        self.context_length = context_length

    @abstractmethod
    def encode(self, text: str) -> List[int]:
        """Ids of one text, without special tokens."""

    @property
    def start_ids(self) -> List[int]:
        """Ids put before every text (none by default)."""
        return []

    @property
    @abstractmethod
    def end_id(self) -> int:
        """Id put after every text (kept when the text is truncated)."""

    @property
    @abstractmethod
    def pad_id(self) -> int:
        """Id filling the rest of ``context_length``."""

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """Tokenize texts.

        Args:
            texts (Sequence[str] | str): texts.

        Returns:
            torch.LongTensor: ``(N, context_length)`` token ids. The texts that were cut to fit
            are in :attr:`last_truncated` afterwards (for callers that must say so).
        """
        if isinstance(texts, str):
            texts = [texts]
        result = torch.full((len(texts), self.context_length), self.pad_id, dtype=torch.long)
        self.last_truncated: List[str] = []
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f'texts must be strings, got {type(text).__name__}: {text!r}')
            ids = list(self.start_ids) + self.encode(text)
            if len(ids) > self.context_length - 1:
                self.last_truncated.append(text)
            ids = ids[:self.context_length - 1] + [self.end_id]
            result[row, :len(ids)] = torch.tensor(ids)
        return result

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(context_length={self.context_length})'
