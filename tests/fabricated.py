"""Tiny fabricated MNIST and ImageNet folders, laid out like the real ones (helpers, not tests)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from subtask_distill.data.mnist import MNIST_FILES, write_idx


def fabricate_mnist(folder: Path, per_class: int = 3, gz: bool = True) -> dict[str, np.ndarray]:
    """Write the four MNIST IDX files (per_class images of each digit per split) into folder.

    Labels cycle 0..9; each image is a bright bar whose position depends on
    the digit, plus speckle. Returns the arrays written, keyed like load_mnist.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, stream in (("train", 0), ("test", 1)):
        labels = np.tile(np.arange(10, dtype=np.uint8), per_class)
        arrays[f"{split}_images"] = _digit_like(labels, np.random.RandomState(stream))
        arrays[f"{split}_labels"] = labels
    suffix = ".gz" if gz else ""
    for key, name in MNIST_FILES.items():
        write_idx(folder / f"{name}{suffix}", arrays[key])
    return {key: value.astype(np.int64) if key.endswith("labels") else value for key, value in arrays.items()}


def _digit_like(labels: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    images = (rng.random_sample((len(labels), 28, 28)) < 0.05).astype(np.uint8) * 120
    for image, label in zip(images, labels):
        column = 4 + 2 * int(label)
        image[4:24, column : column + 4] = 255
    return images


def fabricate_imagenet(
    root: Path,
    wnids: Sequence[str],
    train_per_class: int = 4,
    val_per_class: int = 2,
    size: tuple[int, int] = (40, 48),
) -> dict[str, list]:
    """Write small RGB JPEGs (height, width = size) as root/train/<wnid>/ and root/val/<wnid>/ folders.

    Returns "pool_paths"/"test_paths" (relative to root, in scan order) and
    "pool_labels"/"test_labels" (the index of the wnid).
    """
    root = Path(root)
    info: dict[str, list] = {"pool_paths": [], "pool_labels": [], "test_paths": [], "test_labels": []}
    val_number = 0
    for label, wnid in enumerate(wnids):
        names = {
            "train": sorted(f"{wnid}_{i}.JPEG" for i in range(train_per_class)),  # scan order
            "val": [f"ILSVRC2012_val_{val_number + i + 1:08d}.JPEG" for i in range(val_per_class)],
        }
        val_number += val_per_class
        for folder, split in (("train", "pool"), ("val", "test")):
            class_dir = root / folder / wnid
            class_dir.mkdir(parents=True, exist_ok=True)
            for i, name in enumerate(names[folder]):
                rng = np.random.RandomState([label, i, folder == "val"])
                _smooth_image(rng, size).save(class_dir / name, quality=90)
                info[f"{split}_paths"].append(f"{folder}/{wnid}/{name}")
                info[f"{split}_labels"].append(label)
    return info


def _smooth_image(rng: np.random.RandomState, size: tuple[int, int]) -> Image.Image:
    """Dark, smooth random colours: compact as JPEG, and a pasted white digit clearly brightens it."""
    coarse = rng.randint(0, 128, size=(4, 4, 3)).astype(np.uint8)
    return Image.fromarray(coarse).resize((size[1], size[0]), Image.BILINEAR)
