"""The distillation objective: KD on the subtask logits + lambda * the sum of the layer losses.

Built once per run from the method, the paired layers and their shapes; called
by the training loop with a batch, it returns the named loss terms.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from ..methods import Method
from ..methods.kd import kd_loss
from ..methods.subspace import LayerSubspace
from ..models.taps import FeatureTaps, aligned_size, pool_to
from ..runtime import memory_format_of


@dataclass
class TeacherOutputs:
    """What the student learns from, per image: subtask logits and one target per layer loss."""

    logits: torch.Tensor
    targets: list[torch.Tensor] = field(default_factory=list)

    def select(self, index: torch.Tensor, device: torch.device) -> "TeacherOutputs":
        return TeacherOutputs(
            logits=gather_rows(self.logits, index).to(device, non_blocking=True),
            targets=[gather_rows(t, index).to(device, non_blocking=True) for t in self.targets],
        )

    def __len__(self) -> int:
        return len(self.logits)


def gather_rows(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``tensor[index]``, in the tensor's own memory format.

    index_select is faster than advanced indexing on the CPU; a channels-last map is gathered as the
    contiguous N x H x W x C tensor it is, which keeps the fast row-copying path (docs/performance.md).
    """
    if memory_format_of(tensor) == torch.channels_last:
        return tensor.permute(0, 2, 3, 1).index_select(0, index).permute(0, 3, 1, 2)
    return tensor.index_select(0, index)


class DistillationObjective(nn.Module):
    """KD + lambda * sum of layer losses. Its own parameters (those of the layer losses) train with the student."""

    def __init__(
        self,
        method: Method,
        temperature: float,
        lam: float = 0.0,
        layer_losses: Sequence[nn.Module] = (),
        student_taps: FeatureTaps | None = None,
        sizes: Sequence[tuple[int, int]] = (),
    ):
        super().__init__()
        if method.uses_layers and (student_taps is None or not layer_losses):
            raise ValueError(f"method {method.name!r} needs student taps and layer losses")
        self.temperature = temperature
        self.lam = lam
        self.layer_losses = nn.ModuleList(layer_losses)
        self.student_taps = student_taps
        self.sizes = list(sizes)

    def forward(self, student: nn.Module, x: torch.Tensor, teacher: TeacherOutputs) -> dict[str, torch.Tensor]:
        if self.student_taps is None:
            logits, features = student(x), []
        else:
            logits, features = self.student_taps(x)
        terms = {"kd": kd_loss(logits, teacher.logits, self.temperature)}
        if self.layer_losses:
            for feature in features:
                if feature.requires_grad:
                    feature.register_hook(functools.partial(_in_layout_of, memory_format_of(feature)))
            per_layer = [
                loss(pool_to(feature, size), target)
                for loss, feature, size, target in zip(self.layer_losses, features, self.sizes, teacher.targets)
            ]
            terms["layers"] = self.lam * torch.stack(per_layer).sum()
        return terms

    @torch.no_grad()
    def teacher_targets(self, teacher_features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each layer loss's target from the teacher's feature maps (pooled to the aligned size)."""
        return [
            loss.teacher_target(pool_to(feature, size))
            for loss, feature, size in zip(self.layer_losses, teacher_features, self.sizes)
        ]


def _in_layout_of(layout: torch.memory_format, gradient: torch.Tensor) -> torch.Tensor:
    """A tapped map's gradient (the next layer's plus the layer loss's) can come out permuted, broadcast or in
    another layout than the map; the student's backward then takes a slow strided path. Handing it back in the
    map's own layout keeps every layer loss free of layout concerns (docs/performance.md)."""
    return gradient.contiguous(memory_format=layout)


def build_objective(
    method: Method,
    options: dict[str, Any] | None,
    temperature: float,
    lam: float,
    student_taps: FeatureTaps | None = None,
    teacher_shapes: Sequence[tuple[int, int, int]] = (),
    subspaces: Sequence[LayerSubspace] | None = None,
    example: torch.Tensor | None = None,
) -> DistillationObjective:
    """The objective of ``method``; for a layer-wise method, one layer loss per paired layer.

    ``example`` (one input) is used to read the student's feature shapes.
    """
    if not method.uses_layers:
        return DistillationObjective(method, temperature)
    if student_taps is None or example is None:
        raise ValueError(f"method {method.name!r} needs the student's taps and an example input")
    if method.subspace and subspaces is None:
        raise ValueError(f"method {method.name!r} needs a fitted {method.subspace!r} subspace")
    student_shapes = student_taps.shapes(example)
    losses, sizes = [], []
    for index, (t_shape, s_shape) in enumerate(zip(teacher_shapes, student_shapes)):
        size = aligned_size(t_shape[1:], s_shape[1:])
        extra = {"subspace": subspaces[index]} if method.subspace else {}
        losses.append(method.layer_loss((t_shape[0], *size), (s_shape[0], *size), **(options or {}), **extra))
        sizes.append(size)
    return DistillationObjective(method, temperature, lam, losses, student_taps, sizes)
