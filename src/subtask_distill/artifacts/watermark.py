"""A single-class "natural" artifact: a semi-transparent text watermark in a lower corner.

As the copyright line of the Clever Hans literature (and the authors'
``imagenet_copyright``): white text blended into the image, in the lower
left or lower right corner (the instance, drawn at random per image). The
text is rendered once per image size with Pillow's default font, antialiased
by drawing at four times the size and downsampling.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .registry import Artifact, ArtifactContext, Region, register_artifact

_OVERSAMPLE = 4


@lru_cache(maxsize=8)
def text_mask(text: str, width: int, height: int) -> np.ndarray:
    """The text's coverage in [0, 1] over a width x height box, centred."""
    canvas = Image.new("L", (width * _OVERSAMPLE, height * _OVERSAMPLE), 0)
    font = ImageFont.load_default(size=max(1, round(height * _OVERSAMPLE * 0.8)))
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    scale = min(1.0, canvas.width / max(1, right - left))
    if scale < 1.0:  # the text is wider than the box: draw it smaller
        font = ImageFont.load_default(size=max(1, int(font.size * scale)))
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    origin = ((canvas.width - (right - left)) / 2 - left, (canvas.height - (bottom - top)) / 2 - top)
    draw.text(origin, text, fill=255, font=font)
    small = canvas.resize((width, height), Image.LANCZOS)
    return np.asarray(small, dtype=np.float32) / 255.0


@register_artifact
class TextWatermark(Artifact):
    name = "watermark"
    class_coded = False
    variants = 2  # lower left, lower right

    def __init__(self, context: ArtifactContext, text: str = "© 2024", opacity: float = 0.7):
        super().__init__(context)
        if not 0 < opacity <= 1:
            raise ValueError(f"data.artifact.watermark.opacity must lie in (0, 1], got {opacity}")
        self.height = max(6, round(self.image_size * 3 / 16))
        self.width = self.image_size // 2
        self.alpha = text_mask(text, self.width, self.height)[..., None] * np.float32(opacity)

    def region(self, instance: int) -> Region:
        left = 0 if instance == 0 else self.image_size - self.width
        return Region(self.image_size - self.height, left, self.height, self.width)

    def draw(self, image: np.ndarray, code: int, instance: int, pool: str) -> np.ndarray:
        out = image.copy()
        rows, cols = self.region(instance).slices
        below = out[rows, cols].astype(np.float32)
        out[rows, cols] = np.round(below * (1 - self.alpha) + 255.0 * self.alpha).astype(np.uint8)
        return out

    def draw_batch(self, images: torch.Tensor, codes: np.ndarray, instances: np.ndarray, pool: str) -> torch.Tensor:
        out = images.clone()
        alpha = torch.from_numpy(self.alpha).permute(2, 0, 1).to(images.device, non_blocking=True)
        for instance in np.unique(instances):
            chosen = torch.from_numpy(np.flatnonzero(instances == instance)).to(images.device, non_blocking=True)
            rows, cols = self.region(int(instance)).slices
            below = out[chosen, :, rows, cols].float()
            out[chosen, :, rows, cols] = (below * (1 - alpha) + 255.0 * alpha).round_().to(torch.uint8)
        return out
