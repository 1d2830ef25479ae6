"""Distillation methods, one module each, behind one registry.

A method is output-only KD plus, optionally, a layer loss applied to each of
the pair's four (teacher layer, student layer) feature maps. The registry key
is the ``{method}`` wildcard of the workflow and the key under ``methods:``
in the config. Adding a method means adding one module here that calls
``register_method`` (and importing it below) and one config entry.
"""

from .registry import LayerLoss, Method, get_method, list_methods, register_method
from . import kd, at, vid, vkd, subdistill  # noqa: F401  (each registers its method)

__all__ = ["LayerLoss", "Method", "get_method", "list_methods", "register_method"]
