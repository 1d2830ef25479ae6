"""Networks from their config entries, checkpoints, and the frozen subtask teacher."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..io import save_torch
from .registry import create_model
from .subtask import SubtaskHead


def build_network(spec: dict[str, Any], num_classes: int) -> nn.Module:
    """Instantiate a teacher or student from its config entry (``arch``, ``kwargs``)."""
    return create_model(spec["arch"], num_classes=spec.get("num_classes", num_classes), **spec.get("kwargs", {}))


def save_checkpoint(path, model: nn.Module, spec: dict[str, Any], **extra: Any) -> None:
    save_torch(path, {"arch": spec["arch"], "spec": spec, "state_dict": model.state_dict(), **extra})


def load_subtask_teacher(path, spec: dict[str, Any], subtask_classes, device: torch.device) -> nn.Module:
    """The frozen teacher restricted to the subtask logits, in eval mode."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if checkpoint.get("arch") != spec["arch"]:
        raise ValueError(f"teacher checkpoint {path} holds {checkpoint.get('arch')!r}, config expects {spec['arch']!r}")
    model = build_network(spec, num_classes=spec.get("num_classes", 0) or len(subtask_classes))
    model.load_state_dict(checkpoint["state_dict"])
    teacher = SubtaskHead(model, subtask_classes).to(device).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher
