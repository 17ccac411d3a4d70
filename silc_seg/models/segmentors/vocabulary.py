"""Class vocabulary shared by the open-vocabulary segmentors (zero-shot and CAT-Seg)."""
from typing import List, Optional, Sequence, Union

from ..utils import build_vocabulary

ClassNames = Union[str, Sequence[Union[str, Sequence[str]]]]


class VocabularyMixin:
    """Where a segmentor's class names come from.

    The vocabulary is the configured ``class_names`` (a list or a class-name file whose lines may
    list comma-separated synonyms) or, when none is configured, the classes of the evaluated
    dataset, which ``ModelDatasetMetaHook`` hands over through :attr:`dataset_meta`.
    """

    def _init_vocabulary(self, class_names: Optional[ClassNames]) -> None:
        self._configured_vocabulary = (
            build_vocabulary(class_names) if class_names is not None else None)
        self._dataset_meta: Optional[dict] = None

    @property
    def dataset_meta(self) -> Optional[dict]:
        """Metainfo of the evaluated dataset (class names, palette)."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, metainfo: Optional[dict]) -> None:
        classes = (metainfo or {}).get('classes')
        if metainfo is not None and not classes:
            raise ValueError(f'dataset_meta has no "classes"; {type(self).__name__} needs the '
                             'class names (or set class_names in the model config)')
        if classes and self._configured_vocabulary is not None and len(
                self._configured_vocabulary) != len(classes):
            raise ValueError(
                f'class_names lists {len(self._configured_vocabulary)} classes but the dataset '
                f'has {len(classes)} ({list(classes)[:5]}...): the predicted indices would not '
                'match the labels; fix the class-name file (one line per dataset class, in the '
                'dataset order)')
        self._dataset_meta = metainfo

    def set_vocabulary(self, class_names: ClassNames) -> None:
        """Use ``class_names`` (file or list, with optional synonyms) at inference; cached text
        embeddings are rebuilt lazily."""
        self._configured_vocabulary = build_vocabulary(class_names)
        self._dataset_meta = None

    @property
    def vocabulary(self) -> List[List[str]]:
        """The synonyms of each class used at inference."""
        if self._configured_vocabulary is not None:
            return self._configured_vocabulary
        if self._dataset_meta is not None:
            return build_vocabulary(list(self._dataset_meta['classes']))
        raise RuntimeError(
            f'{type(self).__name__} has no test class names: set model.class_names (a list or '
            'a class-name file), or evaluate through the runner with '
            "custom_hooks=[dict(type='ModelDatasetMetaHook')] so that the dataset's classes "
            'are used')
