"""silc-seg: SILC vision-language pretraining and dense prediction on OpenMMLab.

Importing the package registers every module into MMSegmentation's registries; its one other
effect on the process is the weights-only checkpoint loader (see ``docs/design.md``).
"""
from . import apis, datasets, engine, evaluation, hub, models, utils
from .version import __version__

__all__ = ['__version__', 'apis', 'datasets', 'engine', 'evaluation', 'hub', 'models', 'utils']
