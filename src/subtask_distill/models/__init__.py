"""Model registry: architectures are built by name, as in timm.

``create_model(name, num_classes=...)`` is the one entry point; modules of
this package register their builders with ``@register_model`` (every module
here is imported, so a new architecture is one new file).
"""

import importlib
import pkgutil

from .registry import create_model, list_models, register_model
from .subtask import SubtaskHead

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module not in ("registry", "subtask", "taps", "layer_check"):
        importlib.import_module(f"{__name__}.{_module}")

__all__ = ["SubtaskHead", "create_model", "list_models", "register_model"]
