from .class_names import (build_vocabulary, flatten_vocabulary, load_class_names, parse_class_list,
                          parse_class_name_lines)
from .pamr import PAMR
from .prompt_templates import PROMPT_TEMPLATE_SETS, get_prompt_templates
from .text_classifier import ClassEmbeddings, TextClassifier
from .wrappers import unwrap_model

__all__ = [
    'PAMR', 'PROMPT_TEMPLATE_SETS', 'ClassEmbeddings', 'TextClassifier', 'build_vocabulary',
    'flatten_vocabulary', 'get_prompt_templates', 'load_class_names', 'parse_class_list',
    'parse_class_name_lines', 'unwrap_model'
]
