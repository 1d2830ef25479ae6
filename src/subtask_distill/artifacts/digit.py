"""The paper's artifact: a handwritten digit in the top-left patch, whose class is the code.

Its look (option ``style``):

- ``opaque``: the digit image replaces the patch: a grey-level square, black
  background and white strokes, whatever the photo beneath. The authors' code
  (``mnist_corner``) converts the 28 x 28 MNIST image to RGBA with full
  opacity, resizes it to 56 x 56 with PIL's bicubic filter and pastes it over
  the corner.
- ``strokes``: the digit's intensity is the opacity of white blended into the
  photo, which shows through the digit's background.

A digit is held as intensities in [0, 1] at the size of the patch (p x p,
p = image size / 4, the top-left cell of the 4 x 4 grid).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .registry import GRID, Artifact, ArtifactContext, Region, register_artifact

STYLES = ("opaque", "strokes")


def resize_digits(images: np.ndarray, size: int, style: str) -> np.ndarray:
    """uint8 digits (N x h x w) -> float32 intensities (N x size x size) in [0, 1].

    ``opaque`` resizes as the authors' code does (PIL bicubic, so the square
    matches theirs pixel for pixel); ``strokes`` with antialiased bilinear
    interpolation, which keeps thin strokes from ringing.
    """
    images = np.ascontiguousarray(images, dtype=np.uint8)
    if style == "opaque":
        resized = [np.asarray(Image.fromarray(image, "L").resize((size, size), Image.BICUBIC)) for image in images]
        out = np.stack(resized) if resized else np.empty((0, size, size), np.uint8)
        return out.astype(np.float32) / 255.0
    if style == "strokes":
        digits = torch.from_numpy(images).float().div_(255.0).unsqueeze(1)
        resized = F.interpolate(digits, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return resized.squeeze(1).clamp_(0.0, 1.0).numpy()
    raise ValueError(f"unknown digit style {style!r}; expected one of {STYLES}")


def draw_digits(corners, digits, style: str):
    """Corner patches (... x p x p x channels, 0-255 as floats) with the digits (... x p x p) drawn in.

    Works on NumPy arrays and torch tensors alike; rounding to bytes is left
    to the caller.
    """
    alpha = digits[..., None]
    if style == "opaque":
        return 255.0 * alpha + 0.0 * corners  # the photo beneath is discarded
    if style == "strokes":
        return corners * (1 - alpha) + 255.0 * alpha
    raise ValueError(f"unknown digit style {style!r}; expected one of {STYLES}")


@register_artifact
class Digit(Artifact):
    """A digit of the instance pools (MNIST's, or the bundled 8 x 8 digits) in the top-left patch.

    ``test_pool``: the test split's digits come from the training digits (as
    the authors' code draws every split's digits from MNIST's training images)
    or from the held-out ones.
    """

    name = "digit"
    class_coded = True
    uses_digits = True

    def __init__(
        self,
        context: ArtifactContext,
        style: Literal["opaque", "strokes"] = "opaque",
        test_pool: Literal["train", "test"] = "train",
    ):
        super().__init__(context)
        if context.pools is None:
            raise ValueError("the digit artifact needs its digit pools (the bundled digits or MNIST)")
        self.style, self.test_pool, self.pools = style, test_pool, context.pools
        self.patch = self.image_size // GRID
        self._glyphs: dict[tuple[str, int], np.ndarray] = {}

    def pool_of(self, split: str) -> str:
        return self.test_pool if split == "test" else "train"

    def instance_labels(self, pool: str) -> np.ndarray:
        return np.asarray(self.pools[pool][1], dtype=np.int64)

    def region(self, instance: int) -> Region:
        return Region(0, 0, self.patch, self.patch)

    def glyph(self, pool: str, instance: int) -> np.ndarray:
        """Digit ``instance`` of ``pool`` as intensities at the patch size (resized once, on first use)."""
        images = self.pools[pool][0]
        if images.dtype == np.float32 and images.shape[1:] == (self.patch, self.patch):
            return images[instance]
        key = (pool, instance)
        if key not in self._glyphs:
            self._glyphs[key] = resize_digits(images[instance : instance + 1], self.patch, self.style)[0]
        return self._glyphs[key]

    def draw(self, image: np.ndarray, code: int, instance: int, pool: str) -> np.ndarray:
        out = image.copy()
        p = self.patch
        corner = out[:p, :p].astype(np.float32)
        out[:p, :p] = np.round(draw_digits(corner, self.glyph(pool, instance), self.style)).astype(np.uint8)
        return out

    def draw_batch(self, images: torch.Tensor, codes: np.ndarray, instances: np.ndarray, pool: str) -> torch.Tensor:
        if len(images) == 0:
            return images
        p = self.patch
        glyphs = torch.from_numpy(np.stack([self.glyph(pool, int(i)) for i in instances])).to(images.device, non_blocking=True)
        corners = images[:, :, :p, :p].permute(0, 2, 3, 1).float()
        drawn = draw_digits(corners, glyphs, self.style)
        out = images.clone()
        out[:, :, :p, :p] = drawn.round_().to(torch.uint8).permute(0, 3, 1, 2)
        return out
