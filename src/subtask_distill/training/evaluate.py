"""Inference helpers: batched logits and accuracy against true labels."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.tensors import batch_indices


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 512, device: torch.device | None = None) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in eval mode, returned on the CPU."""
    device = device or torch.device("cpu")
    was_training = model.training
    model.eval()
    outputs = [model(x[idx].to(device, non_blocking=True)).float().cpu() for idx in batch_indices(len(x), batch_size)]
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0)


def accuracy(logits: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray) -> float:
    """Top-1 accuracy in percent."""
    logits = torch.as_tensor(logits)
    labels = torch.as_tensor(labels)
    if len(labels) == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float((logits.argmax(dim=1) == labels).float().mean() * 100.0)
