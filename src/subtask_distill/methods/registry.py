"""The method registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from torch import nn

LayerLossBuilder = Callable[..., nn.Module]


@dataclass(frozen=True)
class Method:
    """A distillation method.

    ``layer_loss`` builds the loss for one layer pair from the teacher's and
    the student's feature shapes (C, H, W); ``None`` means output-only KD.
    """

    name: str
    display_name: str
    layer_loss: Optional[LayerLossBuilder] = None

    @property
    def uses_layers(self) -> bool:
        return self.layer_loss is not None


_METHODS: dict[str, Method] = {}


def register_method(name: str, display_name: str, layer_loss: Optional[LayerLossBuilder] = None) -> Method:
    if name in _METHODS:
        raise ValueError(f"method {name!r} is registered twice")
    method = Method(name=name, display_name=display_name, layer_loss=layer_loss)
    _METHODS[name] = method
    return method


def list_methods() -> list[str]:
    return list(_METHODS)


def get_method(name: str) -> Method:
    try:
        return _METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; registered: {', '.join(_METHODS)}") from None
