"""Every data kind in one format: the steps after data preparation do not care where images come from.

A split is a dict of arrays per split s: ``s_x`` (uint8 NHWC, digit pasted),
``s_y``, ``s_digit`` (-1 when clean), ``s_digit_index``, ``s_id``, plus
``channel_mean``/``channel_std`` for normalisation. The embedded study stores
exactly this per (rho, seed); the ImageNet study stores a manifest per rho and
decodes its images here (evaluation transform, digit pasted after the crop).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch.utils.data import DataLoader

from ..io import load_arrays
from .contamination import NO_DIGIT, SPLITS
from .digits import resize_digits
from .imagenet import IMAGENET_MEAN, IMAGENET_STD, SplitView, WadingBirds, load_manifest, split_digits, split_of
from .mnist import load_mnist


def decode_images(
    root: Path, view: SplitView, digits: np.ndarray, style: str, image_size: int, workers: int
) -> np.ndarray:
    """uint8 NHWC images of a split through the evaluation transform, digits drawn in, in split order."""
    dataset = WadingBirds(root, view, digits, style, "eval", image_size, normalise=False)
    loader = DataLoader(dataset, batch_size=64, shuffle=False, num_workers=workers)
    images = [batch.permute(0, 2, 3, 1).numpy() for batch, *_ in loader]
    return np.concatenate(images) if images else np.empty((0, image_size, image_size, 3), np.uint8)


def split_arrays(
    data_cfg: dict[str, Any], splits_path: Path, seed: int, which: Sequence[str] = SPLITS, workers: int = 0
) -> dict[str, np.ndarray]:
    """The splits in ``which`` of one (rho, seed) in the common format (see the module docstring)."""
    if data_cfg["kind"] == "embedded":
        return load_arrays(splits_path)
    manifest = load_manifest(splits_path)
    mnist = load_mnist(Path(data_cfg["mnist_root"]))
    style, size = data_cfg["digit"]["style"], data_cfg["image_size"]
    out = {"channel_mean": np.array(IMAGENET_MEAN, np.float32), "channel_std": np.array(IMAGENET_STD, np.float32)}
    for split in which:
        view = split_of(manifest, split, seed)
        digits = split_digits(view, mnist, size, style)
        out[f"{split}_x"] = decode_images(Path(data_cfg["imagenet_root"]), view, digits, style, size, workers)
        out[f"{split}_y"] = view.labels
        out[f"{split}_digit"] = view.digit_class
        out[f"{split}_digit_index"] = view.digit_index
        out[f"{split}_id"] = view.image_id
        out[f"{split}_path"] = view.paths
    return out


def occlusion_inputs(
    data_cfg: dict[str, Any], splits: dict[str, np.ndarray], base_path: Path | None, workers: int = 0
) -> dict[str, np.ndarray]:
    """What occlusion needs beyond the contaminated test images: the clean test images
    (``clean_x``, indexed by ``test_id``) and the pool the test digits come from (``digits``
    at the corner patch's size, ``digits_y`` their labels), from which replacement digits are drawn.
    """
    pool = data_cfg["digit"]["test_pool"]
    if data_cfg["kind"] == "embedded":
        base = load_arrays(base_path)
        return {"clean_x": base["test_x"], "digits": base[f"digits_{pool}"], "digits_y": base[f"digits_{pool}_y"]}
    num_classes = len(data_cfg["subtask_classes"])
    mnist = load_mnist(Path(data_cfg["mnist_root"]))
    keep = mnist[f"{pool}_labels"] < num_classes
    n = len(splits["test_y"])
    clean_view = SplitView(
        paths=splits["test_path"],
        labels=splits["test_y"],
        digit_class=np.full(n, NO_DIGIT),
        digit_index=np.full(n, NO_DIGIT),
        image_id=splits["test_id"],
    )
    clean = np.empty_like(splits["test_x"])
    size, style = data_cfg["image_size"], data_cfg["digit"]["style"]
    no_digits = np.zeros((n, size // 4, size // 4), np.float32)
    clean[splits["test_id"]] = decode_images(Path(data_cfg["imagenet_root"]), clean_view, no_digits, style, size, workers)
    return {
        "clean_x": clean,
        "digits": resize_digits(mnist[f"{pool}_images"][keep], size // 4, style),
        "digits_y": mnist[f"{pool}_labels"][keep],
    }
