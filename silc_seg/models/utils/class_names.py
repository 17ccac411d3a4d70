"""Vocabularies for zero-shot segmentation: class names with optional synonyms."""
import os.path as osp
import warnings
from typing import List, Sequence, Tuple, Union

Vocabulary = List[List[str]]


def parse_class_name_lines(lines: Sequence[str], source: str = 'class names') -> Vocabulary:
    """Parse one class per line; a line may list comma-separated synonyms.

    Args:
        lines (Sequence[str]): e.g. ``['person, man, woman', 'sky']``.
        source (str): where the lines come from, used in error messages.

    Returns:
        list[list[str]]: the synonyms of each class, in order.
    """
    vocabulary = []
    for line_number, line in enumerate(lines, start=1):
        synonyms = [name.strip() for name in line.strip().split(',')]
        if not line.strip() or not all(synonyms):
            raise ValueError(
                f'{source}: line {line_number} ({line.rstrip()!r}) has an empty class name; '
                'write one class per line, synonyms separated by commas, no blank lines')
        vocabulary.append(synonyms)
    if not vocabulary:
        raise ValueError(f'{source}: no class names')
    check_unique_classes(vocabulary, source)
    return vocabulary


def check_unique_classes(vocabulary: Vocabulary, source: str = 'class names') -> None:
    """Refuse a class given twice (the same names, case and spaces aside): its scores would split
    between the two, and the label indices could not tell them apart. Classes that only share
    their first name are published that way (ADE-847's ``pot, flowerpot`` and ``pot``): one
    warning, since the legend shows that name twice.

    Raises:
        ValueError: naming the name and the positions (1-based) of its classes.
    """
    seen, first_names = {}, {}
    for index, synonyms in enumerate(vocabulary, start=1):
        names = tuple(' '.join(name.lower().split()) for name in synonyms)
        if names in seen:
            raise ValueError(
                f'{source}: the class name {synonyms[0]!r} is given twice (classes '
                f'{seen[names]} and {index}); give each class once (synonyms of one class go on '
                'its line, separated by commas)')
        seen[names] = index
        first_names.setdefault(names[0], []).append(index)
    shared = {name: indices for name, indices in first_names.items() if len(indices) > 1}
    if shared:
        listed = '; '.join(f'{name!r}: classes {", ".join(map(str, indices))}'
                           for name, indices in list(shared.items())[:5])
        warnings.warn(f'{source}: {len(shared)} class name(s) stand first for several classes '
                      f'({listed}); the legend shows them alike')


def parse_class_list(text: str, source: str = '--classes') -> Vocabulary:
    """Parse comma-separated class names (one name per class, no synonyms).

    Args:
        text (str): e.g. ``'cat,grass,sky'``.
        source (str): where the list comes from, used in error messages.

    Returns:
        list[list[str]]: one single-name synonym list per class.
    """
    items = [item.strip() for item in text.split(',')]
    empty = [index for index, item in enumerate(items, start=1) if not item]
    if empty:
        raise ValueError(
            f'{source}: item {empty[0]} of {text!r} is empty; separate class names by single '
            'commas, e.g. "cat,grass,sky"')
    vocabulary = [[item] for item in items]
    check_unique_classes(vocabulary, source)
    return vocabulary


def load_class_names(path: str) -> Vocabulary:
    """Read a class-name file: one class per line, comma-separated synonyms.

    Blank lines at the end of the file are fine; any other empty line is an error, because it
    would silently shift every following class index.

    Args:
        path (str): the text file.

    Returns:
        list[list[str]]: the synonyms of each class.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'class-name file {path!r} does not exist')
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return parse_class_name_lines(lines, source=path)


def build_vocabulary(class_names: Union[str, Sequence[Union[str, Sequence[str]]]]) -> Vocabulary:
    """Normalize the accepted vocabulary forms into a list of synonym lists.

    Args:
        class_names (str | Sequence): a class-name file path, or a sequence whose items are a
            class name, a ``'name, synonym'`` string or a list of synonyms.

    Returns:
        list[list[str]]: the synonyms of each class.
    """
    if isinstance(class_names, str):
        return load_class_names(class_names)
    lines = []
    for item in class_names:
        lines.append(item if isinstance(item, str) else ', '.join(item))
    return parse_class_name_lines(lines, source='class_names')


def flatten_vocabulary(vocabulary: Vocabulary) -> Tuple[List[str], List[int]]:
    """Flatten synonym lists into text queries and the class index of each query.

    Args:
        vocabulary (list[list[str]]): synonyms of each class.

    Returns:
        tuple[list[str], list[int]]: the queries and their class indices.
    """
    queries, query_to_class = [], []
    for class_index, synonyms in enumerate(vocabulary):
        queries.extend(synonyms)
        query_to_class.extend([class_index] * len(synonyms))
    return queries, query_to_class
