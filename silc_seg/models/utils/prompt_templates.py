"""Prompt templates for zero-shot classifiers built from text embeddings.

The template lists OpenAI CLIP published for ImageNet are data files shipped with the package
(``templates/*.txt``, one format string per line, their source named in the file header), so the
runtime needs no ``open_clip``.
"""
import os.path as osp
from typing import List, Sequence, Union

_SINGLE_TEMPLATE = 'a photo of a {}.'
_TEMPLATE_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'templates')


def read_template_file(path: str) -> List[str]:
    """Templates of a text file: one format string per line; blank and ``#`` lines skipped."""
    with open(path, encoding='utf-8') as f:
        lines = [line.rstrip('\n') for line in f]
    return [line for line in lines if line.strip() and not line.startswith('#')]


PROMPT_TEMPLATE_SETS = {
    # The 80 templates of OpenAI CLIP's ImageNet zero-shot classifier (SCLIP/NACLIP/ClearCLIP).
    'imagenet80': read_template_file(osp.join(_TEMPLATE_DIR, 'imagenet80.txt')),
    # The 7-template subset CLIP's authors selected on ImageNet.
    'short': read_template_file(osp.join(_TEMPLATE_DIR, 'short.txt')),
    'single': [_SINGLE_TEMPLATE],
}


def get_prompt_templates(templates: Union[str, Sequence[str]]) -> List[str]:
    """Resolve a template setting to a list of format strings with one ``{}``.

    Args:
        templates (str | Sequence[str]): A name in :data:`PROMPT_TEMPLATE_SETS`
            (``'imagenet80'``, ``'short'``, ``'single'``) or explicit format strings such as
            ``['a photo of a {}.', 'a sketch of a {}.']``.

    Returns:
        list[str]: the templates.
    """
    if isinstance(templates, str):
        if templates not in PROMPT_TEMPLATE_SETS:
            raise KeyError(
                f'unknown prompt template set {templates!r}; choose one of '
                f'{sorted(PROMPT_TEMPLATE_SETS)} or pass a list of format strings with "{{}}"')
        return list(PROMPT_TEMPLATE_SETS[templates])
    templates = list(templates)
    if not templates:
        raise ValueError('the prompt template list is empty')
    for template in templates:
        if not isinstance(template, str) or template.count('{}') != 1:
            raise ValueError(
                f'prompt template {template!r} must be a string with exactly one "{{}}" '
                'where the class name goes')
    return templates
