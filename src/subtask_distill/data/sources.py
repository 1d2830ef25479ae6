"""Every data kind in one format: the steps after data preparation do not care where images come from.

A split is a dict of arrays per split s: ``s_x`` (uint8 NHWC, artifact
drawn), ``s_y``, ``s_artifact`` (its code, -1 when clean), ``s_instance``,
``s_id``, plus ``channel_mean``/``channel_std`` for normalisation. The
embedded study stores exactly this per (rho, seed); the ImageNet study stores
a manifest per rho and decodes its images here (evaluation transform, the
artifact drawn after the crop).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch.utils.data import DataLoader

from ..artifacts import Artifact, build_artifact, get_artifact
from ..io import load_arrays
from .contamination import NO_ARTIFACT, SPLITS
from .embedded import digit_pools
from .imagenet import IMAGENET_MEAN, IMAGENET_STD, SplitView, WadingBirds, load_manifest, split_of
from .mnist import load_mnist


def study_artifact(data_cfg: dict[str, Any], subtask_base: Path | dict[str, np.ndarray] | None = None) -> Artifact:
    """The configured artifact, with the digit pools where it draws digits: the bundled digits of the
    embedded study's subtask base (a path or its arrays), or MNIST."""
    pools = None
    if get_artifact(data_cfg["artifact"]["kind"]).uses_digits:
        if data_cfg["kind"] == "embedded":
            if subtask_base is None:
                raise ValueError("the digit artifact of the embedded study needs the subtask base (its digits)")
            base = load_arrays(subtask_base) if isinstance(subtask_base, Path) else subtask_base
            pools = digit_pools(base)
        else:
            mnist = load_mnist(Path(data_cfg["mnist_root"]))
            pools = {name: (mnist[f"{name}_images"], mnist[f"{name}_labels"]) for name in ("train", "test")}
    return build_artifact(data_cfg, pools)


def decode_images(root: Path, view: SplitView, artifact: Artifact, image_size: int, workers: int) -> np.ndarray:
    """uint8 NHWC images of a split through the evaluation transform, artifacts drawn in, in split order."""
    dataset = WadingBirds(root, view, artifact, "eval", image_size, normalise=False)
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
    artifact = study_artifact(data_cfg)
    out = {"channel_mean": np.array(IMAGENET_MEAN, np.float32), "channel_std": np.array(IMAGENET_STD, np.float32)}
    for split in which:
        view = split_of(manifest, split, seed)
        out[f"{split}_x"] = decode_images(Path(data_cfg["imagenet_root"]), view, artifact, data_cfg["image_size"], workers)
        out[f"{split}_y"] = view.labels
        out[f"{split}_artifact"] = view.artifact
        out[f"{split}_instance"] = view.instance
        out[f"{split}_id"] = view.image_id
        out[f"{split}_path"] = view.paths
    return out


def clean_test_images(
    data_cfg: dict[str, Any], splits: dict[str, np.ndarray], base_path: Path | None, artifact: Artifact, workers: int = 0
) -> np.ndarray:
    """The test images without any artifact, indexed by ``test_id``: what occlusion restores an artifact's
    region from (the embedded subtask base holds them; ImageNet's are decoded again, with ``artifact``,
    the study's, drawn on none)."""
    if data_cfg["kind"] == "embedded":
        return load_arrays(base_path)["test_x"]
    n = len(splits["test_y"])
    clean_view = SplitView(
        paths=splits["test_path"],
        labels=splits["test_y"],
        artifact=np.full(n, NO_ARTIFACT),
        instance=np.full(n, NO_ARTIFACT),
        image_id=splits["test_id"],
    )
    clean = np.empty_like(splits["test_x"])
    clean[splits["test_id"]] = decode_images(Path(data_cfg["imagenet_root"]), clean_view, artifact, data_cfg["image_size"], workers)
    return clean
