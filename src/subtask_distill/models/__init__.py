"""Model registry: architectures are built by name, as in timm.

``create_model(name, num_classes=...)`` is the one entry point; modules
register their builders with ``@register_model``. Importing this package
imports every module that registers models.
"""

from .registry import create_model, list_models, register_model
from . import embedded, paper  # noqa: F401  (register their models)
from .subtask import SubtaskHead

__all__ = ["SubtaskHead", "create_model", "list_models", "register_model"]
