"""Helpers of the GPU kit's import-time stand-ins (``cv2``, ``scipy``): see ``cv2/__init__.py``.

MMSeg, MMPretrain and MMCV import these packages at module level for code the GPU benchmarks
never run (image decoding, Hausdorff losses, Hungarian matching, BEiT table interpolation).
Their wheels (opencv-python-headless 56.6 MB, SciPy 35.3 MB) do not fit the kit's 64 MiB, so these
stand-ins satisfy the imports; any use raises a clear error instead of computing something.
"""


import importlib.abc
import importlib.machinery
import sys
import types


class Unavailable:
    """A name of a missing package: calling it (or anything reached from it) raises."""

    def __init__(self, name: str, package: str):
        self._name = name
        self._package = package

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f'{self._name} was called, but {self._package.split(".")[0]} is the '
                           'GPU kit\'s import-time stand-in (tools/gpu_kit/shims): install the '
                           'real package to use it')

    def __getattr__(self, attr: str):
        if attr.startswith('__'):
            raise AttributeError(attr)
        return Unavailable(f'{self._name}.{attr}', self._package)

    def __repr__(self) -> str:
        return f'<unavailable {self._name}>'


class _UnavailableClassMeta(type):
    """Metaclass of unavailable classes: class attributes (``InterpolationMode.BICUBIC``)
    are :class:`Unavailable` too."""

    def __getattr__(cls, attr: str):
        if attr.startswith('__'):
            raise AttributeError(attr)
        return Unavailable(f'{cls.__module__}.{cls.__qualname__}.{attr}', cls.__module__)


def unavailable_class(name: str, package: str) -> type:
    """A class that can be subclassed at import time (MMPretrain subclasses torchvision's
    ``RandomResizedCrop``) but raises when instantiated."""

    def __init__(self, *args, **kwargs):
        Unavailable(f'{package}.{name}', package)()

    return _UnavailableClassMeta(name, (), dict(__init__=__init__, __module__=package))


def stub_getattr(package: str, constant=None):
    """A module ``__getattr__`` (PEP 562): for names that ``constant(name)`` maps to a value,
    that value (e.g. OpenCV's integer flags); capitalised names are unavailable classes, the
    rest :class:`Unavailable` functions. The same name always gives the same object."""
    made = {}

    def module_getattr(name: str):
        if name.startswith('__'):
            raise AttributeError(name)
        if name not in made:
            value = constant(name) if constant is not None else None
            if value is None:
                value = unavailable_class(name, package) if name[:1].isupper() else \
                    Unavailable(f'{package}.{name}', package)
            made[name] = value
        return made[name]

    return module_getattr


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Creates any submodule of a stand-in package on import (``torchvision.ops.boxes``)."""

    def __init__(self, package: str):
        self.package = package

    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith(self.package + '.'):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = types.ModuleType(spec.name, f'GPU kit stand-in for {spec.name}')
        module.__path__ = []
        module.__getattr__ = stub_getattr(spec.name)
        return module

    def exec_module(self, module):
        pass


def install_stand_in(module: types.ModuleType, constant=None) -> None:
    """Make ``module`` (a stand-in package's ``__init__``) answer every attribute and every
    submodule import with unavailable names."""
    module.__getattr__ = stub_getattr(module.__name__, constant)
    if not any(isinstance(f, _StandInFinder) and f.package == module.__name__
               for f in sys.meta_path):
        sys.meta_path.append(_StandInFinder(module.__name__))
