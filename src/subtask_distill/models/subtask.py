"""The teacher's subtask head g: keep only the subtask logits."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class SubtaskHead(nn.Module):
    """Wrap a many-class model so it returns the logits of the subtask classes only."""

    def __init__(self, model: nn.Module, class_indices: Sequence[int]):
        super().__init__()
        self.model = model
        self.register_buffer("class_indices", torch.as_tensor(list(class_indices), dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).index_select(1, self.class_indices)
