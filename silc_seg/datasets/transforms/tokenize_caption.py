from typing import Callable, Union

from mmcv.transforms import BaseTransform

from silc_seg.registry import MODELS, TRANSFORMS


@TRANSFORMS.register_module()
class TokenizeCaption(BaseTransform):
    """Tokenize ``results['caption']`` into a fixed-length id tensor.

    **Required Keys:** ``caption`` (str)

    **Added Keys:** ``text`` (``LongTensor(L)``)

    Args:
        tokenizer (dict | callable): A tokenizer registered in ``MODELS`` (e.g.
            ``dict(type='CLIPTokenizer', context_length=77)``) or a built one;
            ``tokenizer(list_of_str)`` must return a ``(N, L)`` ``LongTensor``.
    """

    def __init__(self, tokenizer: Union[dict, Callable]) -> None:
        self.tokenizer = MODELS.build(tokenizer) if isinstance(tokenizer, dict) else tokenizer

    def transform(self, results: dict) -> dict:
        """Add ``text`` to ``results``.

        Args:
            results (dict): Result dict with ``caption``.

        Returns:
            dict: ``results`` with ``text``.
        """
        caption = results['caption']
        if not isinstance(caption, str):
            raise TypeError(f'caption must be a str, got {type(caption).__name__}: '
                            f'{caption!r} ({results.get("img_path")})')
        results['text'] = self.tokenizer([caption])[0]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(tokenizer={self.tokenizer!r})'
