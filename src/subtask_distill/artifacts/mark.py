"""A class-coded artifact other than the digit: a small square whose colour names the class.

The square sits in the middle of the top-left patch (the digit's patch, so
occlusion's artifact patch is the same), ``size`` times the patch's side.
"""

from __future__ import annotations

import numpy as np
import torch

from .registry import GRID, Artifact, ArtifactContext, Region, register_artifact

# Saturated colours far apart in RGB, one per class (up to ten classes).
PALETTE = np.array(
    [
        (230, 25, 75),
        (60, 180, 75),
        (0, 130, 200),
        (255, 225, 25),
        (145, 30, 180),
        (245, 130, 48),
        (70, 240, 240),
        (240, 50, 230),
        (128, 128, 0),
        (255, 255, 255),
    ],
    dtype=np.uint8,
)


@register_artifact
class ColourMark(Artifact):
    name = "mark"
    class_coded = True

    def __init__(self, context: ArtifactContext, size: float = 0.5):
        super().__init__(context)
        if self.num_classes > len(PALETTE):
            raise ValueError(f"the mark has {len(PALETTE)} colours, for {self.num_classes} classes")
        if not 0 < size <= 1:
            raise ValueError(f"data.artifact.mark.size must lie in (0, 1], got {size}")
        patch = self.image_size // GRID
        side = max(2, round(patch * size))
        offset = (patch - side) // 2
        self._region = Region(offset, offset, side, side)

    def region(self, instance: int) -> Region:
        return self._region

    def draw(self, image: np.ndarray, code: int, instance: int, pool: str) -> np.ndarray:
        out = image.copy()
        rows, cols = self._region.slices
        out[rows, cols] = PALETTE[code]
        return out

    def draw_batch(self, images: torch.Tensor, codes: np.ndarray, instances: np.ndarray, pool: str) -> torch.Tensor:
        out = images.clone()
        rows, cols = self._region.slices
        colours = torch.from_numpy(PALETTE[np.asarray(codes, dtype=np.int64)]).to(images.device, non_blocking=True)
        out[:, :, rows, cols] = colours[:, :, None, None]
        return out
