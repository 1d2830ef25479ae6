"""Distillation methods, one module each, behind one registry.

A method is output-only KD plus, optionally, a layer loss applied to each of
the pair's four (teacher layer, student layer) feature maps. The registry key
is the ``{method}`` wildcard of the workflow and the key under ``methods:``
in the config. Adding a method means adding one module to this package that
calls ``register_method`` (every module here is imported) and one config entry.
"""

import importlib
import pkgutil

from .registry import LayerLoss, Method, get_method, list_methods, register_method

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "registry":
        importlib.import_module(f"{__name__}.{_module}")

__all__ = ["LayerLoss", "Method", "get_method", "list_methods", "register_method"]
