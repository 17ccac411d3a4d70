"""Write the GPU kit's import-time stand-ins (``cv2``, ``scipy``, ``torchvision``, ``mmcv._ext``)
into a folder made for one run; nothing named like them lives in the repository.

MMSeg, MMPretrain and MMCV import these packages at module level for code the GPU benchmarks
never run (image decoding, Hausdorff losses, Hungarian matching, BEiT table interpolation,
compiled ops). Their wheels (opencv-python-headless 56.6 MB, SciPy 35.3 MB) do not fit the
kit's 64 MiB, and mmcv-lite has no ``_ext``; a stand-in answers the imports, and any call raises
an error naming the function instead of computing something.

    python tools/gpu_kit/stand_ins.py DEST cv2 scipy [torchvision] [mmcv._ext]

writes ``DEST/_gpu_kit_stub.py`` (this file: the helpers) and, per name, ``DEST/cv2/__init__.py``
or, for a submodule, ``DEST/mmcv/_ext.py`` (``DEST`` then being where the real ``mmcv`` is).
"""
import argparse
import importlib.abc
import importlib.machinery
import shutil
import sys
import types
from pathlib import Path

VERSION = '0.0.0+gpu-kit-stand-in'
# What each stand-in answers for: its module docstring.
STAND_INS = {
    'cv2':
    'OpenCV: ``import mmcv`` reads integer flags (``IMREAD_COLOR``, ...) at import time '
    'and MMEngine\'s runner calls ``setNumThreads``.',
    'scipy':
    'SciPy: MMSeg imports ``scipy.ndimage``, ``scipy.interpolate`` and '
    '``scipy.optimize`` at module level.',
    'torchvision':
    'torchvision, when no wheel imports with the machine\'s torch: MMPretrain '
    'and OpenCLIP import its transforms at module level.',
    'mmcv._ext':
    'mmcv\'s compiled ops: ``import mmseg.models`` imports ``mmcv.ops``, whose '
    'modules look their kernels up in ``mmcv._ext``; no benchmark calls one.',
}


class Unavailable:
    """A name of a missing package: calling it (or anything reached from it) raises."""

    def __init__(self, name: str, package: str):
        self._name = name
        self._package = package

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f'{self._name} was called, but {self._package.split(".")[0]} is the '
                           'GPU kit\'s import-time stand-in (tools/gpu_kit/stand_ins.py): '
                           'install the real package to use it')

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


def opencv_constant(name: str):
    """OpenCV's upper-case flags as distinct integers; ``setNumThreads`` does nothing."""
    if name == 'setNumThreads':
        return lambda num_threads: None
    return 1000 + sum(map(ord, name)) if name.upper() == name else None


def stub_getattr(package: str, constant=None):
    """A module ``__getattr__`` (PEP 562): for names that ``constant(name)`` maps to a value,
    that value; capitalised names are unavailable classes, the rest :class:`Unavailable`
    functions. The same name always gives the same object."""
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
    """Make ``module`` answer every attribute and every submodule import with unavailable
    names."""
    module.__version__ = VERSION
    module.__getattr__ = stub_getattr(module.__name__, constant)
    if '.' not in module.__name__ and not any(
            isinstance(f, _StandInFinder) and f.package == module.__name__ for f in sys.meta_path):
        sys.meta_path.append(_StandInFinder(module.__name__))


def write_stand_ins(dest: Path, names) -> list:
    """Write the helpers and the stand-ins ``names`` under ``dest``; returns the files."""
    unknown = sorted(set(names) - set(STAND_INS))
    if unknown:
        raise ValueError(f'no stand-in for {unknown}; known: {sorted(STAND_INS)}')
    dest.mkdir(parents=True, exist_ok=True)
    written = [dest / '_gpu_kit_stub.py']
    shutil.copyfile(__file__, written[0])
    for name in names:
        parent, _, leaf = name.rpartition('.')
        target = dest.joinpath(*parent.split('.'), f'{leaf}.py') if parent else \
            dest / name / '__init__.py'
        if parent and not target.parent.is_dir():
            raise FileNotFoundError(f'{name}: {target.parent} (the real {parent}) is missing')
        target.parent.mkdir(exist_ok=True)
        constant = 'opencv_constant' if name == 'cv2' else 'None'
        target.write_text(
            f'"""GPU kit stand-in for {STAND_INS[name]}\n\nWritten by '
            'tools/gpu_kit/stand_ins.py for one run."""\n'
            'import sys\n\n'
            'from _gpu_kit_stub import install_stand_in, opencv_constant  # noqa: F401\n\n'
            f'install_stand_in(sys.modules[__name__], {constant})\n')
        written.append(target)
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('dest', type=Path, help='folder to write into (put it on PYTHONPATH)')
    parser.add_argument('names', nargs='+', choices=sorted(STAND_INS))
    args = parser.parse_args()
    for path in write_stand_ins(args.dest, args.names):
        print(path)


if __name__ == '__main__':
    main()
