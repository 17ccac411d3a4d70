"""silc-seg: SILC vision-language pretraining and dense prediction on OpenMMLab.

Importing the package registers every module into MMSegmentation's registries
(see ``docs/design.md``).
"""
import warnings

# MMEngine's is_installed imports and then reloads pkg_resources whenever a config names an
# ``mmseg::`` base; setuptools>=81 warns about pkg_resources on both, twice per command, about
# nothing a user of silc-seg can act on. Only that message is silenced.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated as an API',
                        category=UserWarning)

from . import apis, datasets, engine, evaluation, models, utils  # noqa: E402
from .version import __version__  # noqa: E402

__all__ = [
    '__version__', 'apis', 'datasets', 'engine', 'evaluation', 'models', 'utils'
]
