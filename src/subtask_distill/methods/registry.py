"""The method registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from ..study import ALL_LAYERS, parse_variant

Shape = tuple[int, int, int]


class LayerLoss(nn.Module):
    """The loss of one (teacher layer, student layer) pair.

    Built from the teacher's and the student's feature shapes (C, H, W) after
    spatial alignment; its parameters, if any, train with the student.
    ``teacher_target`` maps the frozen teacher's aligned features to what the
    loss compares against; it depends only on the teacher (and fixed buffers,
    never on the loss's trained parameters), so with fixed inputs it is
    computed once and cached, and online it is computed once per batch for
    every student of a bank.
    """

    def __init__(self, teacher_shape: Shape, student_shape: Shape):
        super().__init__()
        self.teacher_shape = tuple(teacher_shape)
        self.student_shape = tuple(student_shape)

    @torch.no_grad()
    def teacher_target(self, teacher_feature: torch.Tensor) -> torch.Tensor:
        return teacher_feature

    def forward(self, student_feature: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


LayerLossBuilder = Callable[..., LayerLoss]


@dataclass(frozen=True)
class Method:
    """A distillation method.

    ``layer_loss`` builds the loss for one layer pair as
    ``layer_loss(teacher_shape, student_shape, **options)``; ``None`` means
    output-only KD. ``subspace`` names the kind of fitted teacher subspace the
    layer loss needs (passed as ``subspace=``), or ``None``.
    """

    name: str
    display_name: str
    layer_loss: Optional[LayerLossBuilder] = None
    subspace: Optional[str] = None

    @property
    def uses_layers(self) -> bool:
        return self.layer_loss is not None


_METHODS: dict[str, Method] = {}


def register_method(
    name: str, display_name: str, layer_loss: Optional[LayerLossBuilder] = None, subspace: Optional[str] = None
) -> Method:
    if name in _METHODS:
        raise ValueError(f"method {name!r} is registered twice")
    method = Method(name=name, display_name=display_name, layer_loss=layer_loss, subspace=subspace)
    _METHODS[name] = method
    return method


def list_methods() -> list[str]:
    return list(_METHODS)


def get_method(name: str) -> Method:
    try:
        return _METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; registered: {', '.join(_METHODS)}") from None


def display_name(variant: str) -> str:
    """A method's name as tables and figures show it, with its layer subset if the variant has one
    ("AT", "AT (layers 1, 2)" for at-L12)."""
    method, layers = parse_variant(variant)
    name = get_method(method).display_name
    return name if layers == ALL_LAYERS else f"{name} (layers {', '.join(layers)})"
