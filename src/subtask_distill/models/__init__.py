"""Model registry: architectures are built by name, as in timm.

``create_model(name, num_classes=...)`` is the one entry point; a module of
this package registers its builders with ``@register_model`` and is imported
below, so a new architecture is one new file and one import.
"""

# Importing an architecture's module registers it.
from . import embedded, paper  # noqa: F401
from .registry import create_model, list_models, register_model
from .subtask import SubtaskHead

__all__ = ["SubtaskHead", "create_model", "list_models", "register_model"]
