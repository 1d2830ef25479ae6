"""The distillation objective: KD on the subtask logits (+ lambda * layer losses).

Called by the training loop with a batch; returns the named loss terms.
"""

from __future__ import annotations

import torch
from torch import nn

from .methods import Method
from .methods.kd import kd_loss


class DistillationObjective(nn.Module):
    def __init__(self, method: Method, temperature: float):
        super().__init__()
        if method.uses_layers:
            raise NotImplementedError(f"method {method.name!r} needs feature taps, which this objective lacks")
        self.method = method
        self.temperature = temperature

    def forward(self, student: nn.Module, x: torch.Tensor, teacher_logits: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"kd": kd_loss(student(x), teacher_logits, self.temperature)}
