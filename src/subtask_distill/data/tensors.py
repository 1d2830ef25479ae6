"""In-memory image tensors and mini-batch index streams."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch


def images_to_tensor(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """uint8 NHWC images -> normalised float32 NCHW tensor."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    mean_t = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - mean_t) / std_t


def batch_indices(n: int, batch_size: int, generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """Index batches over n items: shuffled when a generator is given, in order otherwise.

    A final batch of one sample is dropped when shuffling: batch norm cannot
    train on it.
    """
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        batch = order[start : start + batch_size]
        if generator is not None and len(batch) < 2:
            return
        yield batch
