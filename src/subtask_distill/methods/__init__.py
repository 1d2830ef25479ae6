"""Distillation methods, one module each, behind one registry.

A method is output-only KD plus, optionally, a layer loss applied to each of
the pair's paired (teacher layer, student layer) feature maps. The registry
key is the ``{method}`` wildcard of the workflow and the key under
``methods:`` in the config. Adding a method means adding one module to this
package that calls ``register_method``, importing it below, and one config
entry.
"""

# Importing a method's module registers it.
from . import at, kd, subdistill, vid, vkd  # noqa: F401
from .registry import LayerLoss, Method, display_name, get_method, list_methods, register_method

__all__ = ["LayerLoss", "Method", "display_name", "get_method", "list_methods", "register_method"]
