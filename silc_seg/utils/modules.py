"""Load a Python file as a module (the tools' scripts are files, not a package)."""
import importlib.util
import sys
from types import ModuleType


def import_file_as_module(path: str, name: str) -> ModuleType:
    """Import ``path`` under ``name`` without touching ``sys.path``.

    Args:
        path (str): the ``.py`` file.
        name (str): its module name (registered in ``sys.modules``, so pickling and dataclasses
            defined in it work).

    Returns:
        ModuleType: the executed module.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f'cannot import {path}')
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
