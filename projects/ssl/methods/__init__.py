"""SSL methods, one module each (``simclr``, ``byol``, ``mocov3``), on :mod:`projects.ssl.methods.base`.

A method module defines ``Config`` (its parameters: the base's plus its own), its ``nn.Module`` (a
subclass of ``SSLMethod``) and ``run``; ``python -m projects.ssl.methods.<name>`` runs it. The registry
is the folder itself: :func:`method_names` lists the modules without importing them, so a new method is
one new file, and the MLflow entry point of the same name follows from it.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from projects.core.config import check_choice

_NOT_METHODS = {"base"}


def method_names() -> tuple[str, ...]:
    names = (m.name for m in pkgutil.iter_modules(__path__))
    return tuple(sorted(n for n in names if not n.startswith("_") and n not in _NOT_METHODS))


def method_module(name: str) -> ModuleType:
    """The module of method ``name`` (its ``Config`` and ``run``); ConfigError naming the choices."""
    check_choice("method", name, method_names())
    return importlib.import_module(f"{__name__}.{name}")
