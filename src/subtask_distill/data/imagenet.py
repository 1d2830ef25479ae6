"""The paper-scale subtask: ImageNet's wading birds carrying the artifact (MNIST digits by default).

Three steps:
- scan: list the images of the subtask classes under ``data.imagenet_root``
  (``train/<wnid>/`` is the training pool, ``val/<wnid>/`` the test set);
- manifest: one file per rho fixing which image carries which artifact
  instance, for every seed's train/validation split (the split changes with
  the seed);
- dataset: decode, crop, draw the artifact, normalise.

The artifact is drawn after the crop, so the digit always fills the top-left
of the 4 x 4 grid of patches, as in the authors' code.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..artifacts import Artifact
from ..io import load_arrays, save_arrays
from .contamination import NO_ARTIFACT, SPURIOUS_VAL, plan_splits

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = frozenset({".jpeg", ".jpg", ".png"})
SCAN_SPLITS = {"pool": "train", "test": "val"}  # scan split -> ImageNet folder
_SORTING_HINT = (
    "ImageNet's validation images come in one flat folder and must first be sorted into wnid folders "
    '(docs/operations.md, section "Running on a SLURM cluster")'
)


class SubtaskClass(NamedTuple):
    wnid: str
    imagenet_index: int
    name: str


WADING_BIRDS = (
    SubtaskClass("n02006656", 129, "spoonbill"),
    SubtaskClass("n02007558", 130, "flamingo"),
    SubtaskClass("n02012849", 134, "crane"),  # the bird, not the machine n03126707
    SubtaskClass("n02013706", 135, "limpkin"),
    SubtaskClass("n02018795", 138, "bustard"),
)
_CLASS_NAMES = {bird.wnid: bird.name for bird in WADING_BIRDS}


class DataError(ValueError):
    """The ImageNet data on disk is unusable (empty class folder, unreadable image, stale manifest)."""


@dataclass(frozen=True)
class ImageList:
    """Image paths relative to the ImageNet root (sorted within each class, classes in subtask order) and labels."""

    paths: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class SplitView:
    """One split of one (rho, seed): per image its path, label, artifact code (NO_ARTIFACT = clean),
    artifact instance, id.

    ``instance`` indexes the artifact's instance pool ``pool`` (for the digit,
    "train": MNIST's training images, always those of train/val; "test": its
    test images); ``image_id`` indexes the training pool or the test set.
    """

    paths: np.ndarray
    labels: np.ndarray
    artifact: np.ndarray
    instance: np.ndarray
    image_id: np.ndarray
    pool: str = "train"

    def __len__(self) -> int:
        return len(self.paths)


# Scanning ------------------------------------------------------------------------------------------------------------


def scan_imagenet(root: Path, wnids: Sequence[str]) -> dict[str, ImageList]:
    """The training pool (root/train/<wnid>/) and test set (root/val/<wnid>/); label k = wnids[k]."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"the ImageNet folder {root} does not exist: set data.imagenet_root")
    return {split: _scan_folder(root, folder, wnids) for split, folder in SCAN_SPLITS.items()}


def _scan_folder(root: Path, folder: str, wnids: Sequence[str]) -> ImageList:
    split_dir = root / folder
    if not split_dir.is_dir():
        raise FileNotFoundError(
            f"{split_dir} does not exist: data.imagenet_root must hold ImageNet's train/ and val/ folders"
        )
    paths, labels = [], []
    for label, wnid in enumerate(wnids):
        class_dir = split_dir / wnid
        if not class_dir.is_dir():
            raise FileNotFoundError(
                f"{class_dir} does not exist: no {folder}/ folder for class {_CLASS_NAMES.get(wnid, 'unknown')} "
                f"({wnid}) under data.imagenet_root. {_SORTING_HINT}."
            )
        images = sorted(p.name for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not images:
            raise DataError(
                f"{class_dir} holds no images (.JPEG, .jpg, .png) of class {_CLASS_NAMES.get(wnid, 'unknown')} "
                f"({wnid}); check data.imagenet_root"
            )
        paths += [f"{folder}/{wnid}/{name}" for name in images]
        labels += [label] * len(images)
    return ImageList(paths=np.array(paths, dtype=np.str_), labels=np.array(labels, dtype=np.int64))


def check_readable(root: Path, paths: Iterable[str]) -> None:
    """Open and verify every image once (when the manifest is built), naming the first unreadable file."""
    for relative in paths:
        path = Path(root) / relative
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as error:  # PIL signals a corrupt file with many exception types
            raise DataError(f"cannot read image {path}: {error}") from error


# Manifests -----------------------------------------------------------------------------------------------------------

MANIFEST_VERSION = 2
MANIFEST_KEYS = (
    "manifest_version",
    "rho",
    "data_seed",
    "validation_fraction",
    "test_pool",
    "seeds",
    "pool_path",
    "pool_label",
    "pool_val_mask",
    "pool_artifact",
    "pool_instance",
    "pool_spurious_artifact",
    "pool_spurious_instance",
    "test_path",
    "test_label",
    "test_artifact",
    "test_instance",
)


def build_manifest(
    scan: dict[str, ImageList], artifact: Artifact, rho: float, data: dict[str, Any], seeds: Sequence[int]
) -> dict[str, np.ndarray]:
    """Every split's images and artifacts at one rho, for each seed (see MANIFEST_KEYS).

    ``data`` is the config's data section. Contamination is planned exactly as
    embedded.build_splits does (``plan_splits``): per seed, the pool is split
    into train/val and each split gets its artifacts, so the pool's arrays
    have one row per seed (row s, column i: pool image i under seed s, as a
    training or a validation image per pool_val_mask). The ``pool_spurious_*``
    arrays hold the validation images contaminated by the training rule
    (selection: spurious).
    """
    pool, test = scan["pool"], scan["test"]
    seeds = np.asarray(seeds, dtype=np.int64)
    if len(np.unique(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds.tolist()}")
    shape = (len(seeds), len(pool.labels))
    val_mask = np.zeros(shape, dtype=bool)
    arrays = {name: np.full(shape, NO_ARTIFACT, dtype=np.int64) for name in ("artifact", "instance", "spurious_artifact", "spurious_instance")}
    for row, seed in enumerate(seeds):
        plans = plan_splits(artifact, data, pool.labels, test.labels, rho, int(seed))
        val_mask[row, plans["val"].ids] = True
        for split, prefix in (("train", ""), ("val", ""), (SPURIOUS_VAL, "spurious_")):
            planned = plans[split]
            arrays[f"{prefix}artifact"][row, planned.ids] = planned.plan.code
            arrays[f"{prefix}instance"][row, planned.ids] = planned.plan.instance
    test_plan = plans["test"]
    return {
        "manifest_version": np.int64(MANIFEST_VERSION),
        "rho": np.float64(rho),
        "data_seed": np.int64(data["seed"]),
        "validation_fraction": np.float64(data["validation_fraction"]),
        "test_pool": np.array(test_plan.pool),
        "seeds": seeds,
        "pool_path": pool.paths,
        "pool_label": pool.labels,
        "pool_val_mask": val_mask,
        **{f"pool_{name}": values for name, values in arrays.items()},
        "test_path": test.paths,
        "test_label": test.labels,
        "test_artifact": test_plan.plan.code,
        "test_instance": test_plan.plan.instance,
    }


def save_manifest(path: Path, manifest: dict[str, np.ndarray]) -> None:
    save_arrays(path, manifest)  # atomic: a killed job never leaves half a manifest


def load_manifest(path: Path) -> dict[str, np.ndarray]:
    manifest = load_arrays(path)
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing or int(manifest["manifest_version"]) != MANIFEST_VERSION:
        raise DataError(f"{path} is not a manifest of this version: delete it to rebuild")
    return manifest


def split_of(manifest: dict[str, np.ndarray], split: str, seed: int) -> SplitView:
    """The images of one split under one seed (the test split is the same for every seed)."""
    seeds = manifest["seeds"].tolist()
    if seed not in seeds:
        raise DataError(f"the manifest was built for seeds {seeds}, not seed {seed}: rebuild it with this seed")
    if split == "test":
        return SplitView(
            paths=manifest["test_path"],
            labels=manifest["test_label"],
            artifact=manifest["test_artifact"],
            instance=manifest["test_instance"],
            image_id=np.arange(len(manifest["test_label"])),
            pool=str(manifest["test_pool"]),
        )
    if split not in ("train", "val", SPURIOUS_VAL):
        raise ValueError(f"unknown split {split!r}; expected 'train', 'val', {SPURIOUS_VAL!r} or 'test'")
    row = seeds.index(seed)
    ids = np.flatnonzero(manifest["pool_val_mask"][row] == (split != "train"))
    prefix = "pool_spurious_" if split == SPURIOUS_VAL else "pool_"
    return SplitView(
        paths=manifest["pool_path"][ids],
        labels=manifest["pool_label"][ids],
        artifact=manifest[f"{prefix}artifact"][row, ids],
        instance=manifest[f"{prefix}instance"][row, ids],
        image_id=ids,
    )


# Transforms and the dataset ------------------------------------------------------------------------------------------


def eval_transform(image_size: int = 224):
    """Resize (256 at 224 px) and centre crop; PIL image -> uint8 CHW tensor, not yet normalised."""
    # Imported here: torchvision takes seconds to import, and the workflow's start-up (dry runs
    # included) reads this module's class table.
    from torchvision.transforms import v2

    return v2.Compose([v2.Resize(round(256 * image_size / 224)), v2.CenterCrop(image_size), v2.PILToTensor()])


def train_transform(image_size: int = 224):
    """Random resized crop and horizontal flip; PIL image -> uint8 CHW tensor, not yet normalised."""
    from torchvision.transforms import v2

    return v2.Compose([v2.RandomResizedCrop(image_size), v2.RandomHorizontalFlip(), v2.PILToTensor()])


class WadingBirds(Dataset):
    """One split's images as (normalised float CHW image, label, artifact code, index in the split).

    With ``normalise=False`` the image stays uint8 CHW (for splits held in memory as bytes).

    Paths live in numpy arrays rather than Python lists, so DataLoader workers
    share them without copy-on-write growth.
    """

    def __init__(
        self,
        root: Path,
        view: SplitView,
        artifact: Artifact,
        transform: Literal["train", "eval"],
        image_size: int = 224,
        normalise: bool = True,
    ) -> None:
        if transform not in ("train", "eval"):
            raise ValueError(f"unknown transform {transform!r}; expected 'train' or 'eval'")
        self.root = Path(root)
        self.view = view
        self.artifact = artifact
        self.transform = train_transform(image_size) if transform == "train" else eval_transform(image_size)
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
        self.normalise = normalise

    def __len__(self) -> int:
        return len(self.view)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int, int]:
        path = self.root / self.view.paths[index]
        try:
            with Image.open(path) as file:
                image = file.convert("RGB")
        except OSError as error:
            raise DataError(f"cannot read image {path}: {error}") from error
        pixels = self.transform(image)
        code = int(self.view.artifact[index])
        if code != NO_ARTIFACT:
            drawn = self.artifact.draw(pixels.permute(1, 2, 0).numpy(), code, int(self.view.instance[index]), self.view.pool)
            pixels = torch.from_numpy(drawn).permute(2, 0, 1)
        if self.normalise:
            pixels = (pixels.float() / 255.0 - self.mean) / self.std
        return pixels, int(self.view.labels[index]), code, index


def seed_worker(worker_id: int) -> None:
    """Seed NumPy and random in a DataLoader worker from the torch seed the loader gave it."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    workers: int,
    generator: torch.Generator,
    pin_memory: bool,
) -> DataLoader:
    """A DataLoader whose order and augmentations follow ``generator``.

    With workers, each worker's torch seed derives from the generator; with
    workers=0 the augmentations draw from torch's global generator, which the
    run seeds from its seed.
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=pin_memory,
        generator=generator,
        worker_init_fn=seed_worker,
        drop_last=shuffle,  # training: a last batch of a single image would break batch norm
    )
