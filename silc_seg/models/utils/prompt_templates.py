"""Prompt templates for zero-shot classifiers built from text embeddings.

The template lists are the ones OpenAI CLIP published for ImageNet, taken from ``open_clip`` (a
runtime dependency) instead of being copied here.
"""
from typing import List, Sequence, Union

from open_clip.zero_shot_metadata import (OPENAI_IMAGENET_TEMPLATES,
                                          SIMPLE_IMAGENET_TEMPLATES)

_SINGLE_TEMPLATE = 'a photo of a {}.'


def _as_format_strings(templates) -> List[str]:
    # open_clip stores templates as one-argument callables; a '{}' placeholder makes them plain,
    # printable format strings.
    return [template('{}') for template in templates]


PROMPT_TEMPLATE_SETS = {
    # The 80 templates of OpenAI CLIP's ImageNet zero-shot classifier (SCLIP/NACLIP/ClearCLIP).
    'imagenet80': _as_format_strings(OPENAI_IMAGENET_TEMPLATES),
    # The 7-template subset CLIP's authors selected on ImageNet.
    'short': _as_format_strings(SIMPLE_IMAGENET_TEMPLATES),
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
