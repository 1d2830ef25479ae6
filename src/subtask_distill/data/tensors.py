"""In-memory image tensors and mini-batch index streams."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch


def images_to_tensor(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """uint8 NHWC images -> normalised float32 NCHW tensor."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    mean_t = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - mean_t) / std_t


class NormalizedImages:
    """uint8 NHWC images that index to normalised float NCHW batches.

    Holding bytes instead of floats takes a quarter of the memory (ImageNet
    splits) and moves a quarter of the data to the GPU; batches are converted
    where they are used.
    """

    def __init__(self, images: np.ndarray | torch.Tensor, mean: Sequence[float], std: Sequence[float]):
        self.images = torch.as_tensor(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
        self.mean = torch.as_tensor(np.asarray(mean, np.float32), device=self.images.device).view(1, -1, 1, 1)
        self.std = torch.as_tensor(np.asarray(std, np.float32), device=self.images.device).view(1, -1, 1, 1)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index) -> torch.Tensor:
        batch = self.images[index]
        if batch.dim() == 3:
            batch = batch[None]
        return (batch.permute(0, 3, 1, 2).float().div_(255.0) - self.mean) / self.std

    def to(self, device: torch.device) -> "NormalizedImages":
        moved = NormalizedImages.__new__(NormalizedImages)
        moved.images, moved.mean, moved.std = self.images.to(device), self.mean.to(device), self.std.to(device)
        return moved


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
