"""Single-class "natural" artifacts over the whole image: heavy JPEG compression, or down-and-up scaling.

As the authors' ``jpeg_artifact`` (quality 5) and ``scaling_artifact``
(factor 4). Neither has a place: the region is the whole image, so
occlusion measures it by restoring the clean image rather than by a patch.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from .registry import Artifact, ArtifactContext, Region, register_artifact


class WholeImage(Artifact):
    class_coded = False

    def region(self, instance: int) -> Region:
        return Region(0, 0, self.image_size, self.image_size)


@register_artifact
class JpegCompression(WholeImage):
    name = "jpeg"

    def __init__(self, context: ArtifactContext, quality: int = 5):
        super().__init__(context)
        if not 1 <= quality <= 95:
            raise ValueError(f"data.artifact.jpeg.quality must lie in 1..95, got {quality}")
        self.quality = quality

    def draw(self, image: np.ndarray, code: int, instance: int, pool: str) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=self.quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return np.asarray(decoded.convert("RGB")).copy()


@register_artifact
class Downscaling(WholeImage):
    name = "downscale"

    def __init__(self, context: ArtifactContext, factor: int = 4):
        super().__init__(context)
        if factor < 2 or self.image_size % factor:
            raise ValueError(f"data.artifact.downscale.factor must be at least 2 and divide the image size, got {factor}")
        self.factor = factor

    def draw(self, image: np.ndarray, code: int, instance: int, pool: str) -> np.ndarray:
        small = self.image_size // self.factor
        picture = Image.fromarray(image).resize((small, small), Image.BILINEAR)
        return np.asarray(picture.resize((self.image_size, self.image_size), Image.BILINEAR)).copy()
