"""Decode once, augment on the device: a job's training images are decoded a single time and held in memory
(on the GPU when training there), and each batch's RandomResizedCrop, horizontal flip, artifact and
normalisation are made for the whole batch at once, the crops as one ``torchvision.ops.roi_align``.

The DataLoader path (``data.augment_on: workers``) decodes every JPEG again every epoch in worker
processes; here the decoding happens once per job. Each image is kept at its own size, shrunk only where
its longer side exceeds ``data.decoded_max_side``, at the top left of a canvas of that side. Crop boxes
are drawn in the original image's pixels with torchvision's algorithm (so their areas and aspect ratios
follow RandomResizedCrop's distribution) and mapped onto the kept pixels. The artifact is drawn after the
crop by the artifact's ``draw_batch``, the pixels the DataLoader path's ``draw`` gives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..artifacts import Artifact
from .contamination import NO_ARTIFACT
from .imagenet import IMAGENET_MEAN, IMAGENET_STD, DataError, SplitView
from .tensors import batch_indices

SCALE = (0.08, 1.0)  # torchvision's RandomResizedCrop defaults
RATIO = (3 / 4, 4 / 3)
ATTEMPTS = 10


@dataclass
class DecodedImages:
    """Images decoded once: ``pixels`` uint8 N x 3 x side x side, image k in the top-left ``kept[k]``
    (height, width) of its canvas; ``original[k]`` the (height, width) of its file."""

    pixels: torch.Tensor
    kept: torch.Tensor
    original: torch.Tensor

    def __len__(self) -> int:
        return len(self.pixels)

    @property
    def nbytes(self) -> int:
        return self.pixels.numel() * self.pixels.element_size()


def kept_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """The size an image is kept at: its own, or shrunk so that its longer side is ``max_side``."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


class _Decoder(Dataset):
    """Decodes image k straight into row k of a canvas in shared memory (DataLoader workers write there, so no
    image is sent back through a queue); returns only its sizes."""

    def __init__(self, root: Path, paths: np.ndarray, canvas: torch.Tensor):
        self.root, self.paths, self.canvas = Path(root), paths, canvas

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, tuple[int, int], tuple[int, int]]:
        path = self.root / self.paths[index]
        try:
            with Image.open(path) as file:
                image = file.convert("RGB")
        except OSError as error:
            raise DataError(f"cannot read image {path}: {error}") from error
        original = (image.height, image.width)
        kept = kept_size(*original, self.canvas.shape[-1])
        if kept != original:
            image = image.resize((kept[1], kept[0]), Image.BILINEAR, reducing_gap=None)
        self.canvas[index, :, : kept[0], : kept[1]] = torch.from_numpy(np.array(image)).permute(2, 0, 1)
        return index, kept, original


def decode_once(root: Path, view: SplitView, max_side: int, workers: int = 0) -> DecodedImages:
    """Every image of ``view``, decoded by ``workers`` processes, in split order."""
    n = len(view)
    pixels = torch.zeros(n, 3, max_side, max_side, dtype=torch.uint8).share_memory_()
    kept = torch.zeros(n, 2, dtype=torch.long)
    original = torch.zeros(n, 2, dtype=torch.long)
    loader = DataLoader(_Decoder(root, view.paths, pixels), batch_size=None, num_workers=workers)
    for index, kept_hw, original_hw in loader:
        kept[index] = torch.tensor(kept_hw)
        original[index] = torch.tensor(original_hw)
    return DecodedImages(pixels, kept, original)


def sample_crops(sizes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """RandomResizedCrop's boxes (top, left, height, width) for images of ``sizes`` (N x 2: height, width).

    torchvision's algorithm for each image at once: up to ten tries of an area share in SCALE and a
    log-uniform aspect ratio in RATIO, the first box that fits placed uniformly; if none fits, the
    largest central crop within RATIO.
    """
    n = len(sizes)
    height, width = sizes[:, 0:1].double(), sizes[:, 1:2].double()
    area = height * width * torch.empty(n, ATTEMPTS, dtype=torch.float64).uniform_(*SCALE, generator=generator)
    log_ratio = torch.empty(n, ATTEMPTS, dtype=torch.float64).uniform_(math.log(RATIO[0]), math.log(RATIO[1]), generator=generator)
    aspect = torch.exp(log_ratio)
    w = torch.round(torch.sqrt(area * aspect))
    h = torch.round(torch.sqrt(area / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.double().argmax(dim=1, keepdim=True)  # the first try that fits (0 when none does)
    found = fits.any(dim=1)
    h, w = h.gather(1, first).squeeze(1), w.gather(1, first).squeeze(1)

    height, width = height.squeeze(1), width.squeeze(1)
    in_ratio = width / height
    central_w = torch.where(in_ratio < RATIO[0], width, torch.where(in_ratio > RATIO[1], torch.round(height * RATIO[1]), width))
    central_h = torch.where(in_ratio < RATIO[0], torch.round(width / RATIO[0]), height)
    h, w = torch.where(found, h, central_h), torch.where(found, w, central_w)
    place = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    top = torch.where(found, torch.floor(place[:, 0] * (height - h + 1)), torch.floor((height - h) / 2))
    left = torch.where(found, torch.floor(place[:, 1] * (width - w + 1)), torch.floor((width - w) / 2))
    return torch.stack([top, left, h, w], dim=1).long()


def crop_and_resize(pixels: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """The ``boxes`` (top, left, height, width, float, in the pixels' coordinates) of uint8 ``pixels``
    (B x 3 x H x W), each resampled to size x size: float, in [0, 255].

    roi_align with an adaptive number of samples per output pixel averages them when it shrinks (as an
    antialiased resize does) and interpolates bilinearly when it enlarges.
    """
    from torchvision.ops import roi_align

    top, left, height, width = boxes.unbind(1)
    index = torch.arange(len(boxes), device=boxes.device, dtype=boxes.dtype)
    rois = torch.stack([index, left, top, left + width, top + height], dim=1)
    return roi_align(pixels.float(), rois, output_size=size, spatial_scale=1.0, sampling_ratio=0, aligned=True)


@dataclass
class AugmentedBatches:
    """Shuffled mini-batches of decoded training images, augmented on ``device`` as torchvision's
    RandomResizedCrop(image_size) + RandomHorizontalFlip and then given the artifact, normalised.

    Order, crops and flips all draw from the run's generator, so a resumed run sees exactly the batches
    the uninterrupted one saw.
    """

    images: DecodedImages
    view: SplitView
    artifact: Artifact
    batch_size: int
    image_size: int
    device: torch.device

    def __post_init__(self) -> None:
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        self.images = DecodedImages(self.images.pixels.to(self.device), self.images.kept, self.images.original)

    def __len__(self) -> int:
        return len(self.images)

    def __call__(self, generator: torch.Generator):
        for index in batch_indices(len(self.images), self.batch_size, generator):
            yield self.augment(index, generator), index

    def augment(self, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The normalised, augmented images of ``index`` (the next draws of ``generator`` choose crops and flips)."""
        crops = sample_crops(self.images.original[index], generator).double()
        flips = torch.rand(len(index), generator=generator) < 0.5
        scale = (self.images.kept[index] / self.images.original[index]).double().repeat(1, 2)
        # Host-to-device copies without non_blocking would wait for the GPU to finish the previous step.
        boxes = (crops * scale).float().to(self.device, non_blocking=True)
        pixels = self.images.pixels[index.to(self.device, non_blocking=True)]
        resized = crop_and_resize(pixels, boxes, self.image_size)
        resized = torch.where(flips.to(self.device, non_blocking=True).view(-1, 1, 1, 1), resized.flip(-1), resized)
        images = resized.round_().clamp_(0, 255).to(torch.uint8)
        images = self.with_artifacts(images, index)
        return (images.float() / 255.0 - self.mean) / self.std

    def with_artifacts(self, images: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The artifact drawn, after the crop, into the images that carry one (by the artifact's ``draw_batch``,
        on the device for the kinds that draw with tensor arithmetic)."""
        codes = self.view.artifact[index.numpy()]
        marked = np.flatnonzero(codes != NO_ARTIFACT)
        if len(marked) == 0:
            return images
        rows = torch.from_numpy(marked).to(images.device, non_blocking=True)
        instances = self.view.instance[index.numpy()][marked]
        images[rows] = self.artifact.draw_batch(images[rows], codes[marked], instances, self.view.pool)
        return images
