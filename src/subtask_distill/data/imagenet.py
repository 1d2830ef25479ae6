"""The paper-scale subtask: ImageNet's wading birds with MNIST digits pasted on.

Three steps:
- scan: list the images of the subtask classes under ``data.imagenet_root``
  (``train/<wnid>/`` is the training pool, ``val/<wnid>/`` the test set);
- manifest: one file per rho fixing which image carries which MNIST digit,
  for every seed's train/validation split (the split changes with the seed);
- dataset: decode, crop, draw the digit into the top-left corner, normalise.

The digit is drawn after the crop, so it always fills the top-left of the
4 x 4 grid of patches, as in the authors' code.
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

from ..io import load_arrays, save_arrays
from .contamination import NO_DIGIT, plan_contamination, validation_split
from .digits import draw_digits, resize_digits

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
    """One split of one (rho, seed): per image its path, label, digit class (NO_DIGIT = clean), digit index, id.

    ``digit_index`` indexes the MNIST images of ``digit_pool`` ("train": MNIST's
    training images, always those of train/val; "test": its test images);
    ``image_id`` indexes the training pool or the test set.
    """

    paths: np.ndarray
    labels: np.ndarray
    digit_class: np.ndarray
    digit_index: np.ndarray
    image_id: np.ndarray
    digit_pool: str = "train"

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

MANIFEST_KEYS = (
    "rho",
    "data_seed",
    "validation_fraction",
    "test_digit_pool",
    "seeds",
    "pool_path",
    "pool_label",
    "pool_val_mask",
    "pool_digit_class",
    "pool_digit_index",
    "test_path",
    "test_label",
    "test_digit_class",
    "test_digit_index",
)


def build_manifest(
    scan: dict[str, ImageList],
    digit_labels: dict[str, np.ndarray],
    rho: float,
    data: dict[str, Any],
    seeds: Sequence[int],
) -> dict[str, np.ndarray]:
    """Every split's images and digits at one rho, for each seed (see MANIFEST_KEYS).

    ``digit_labels`` holds MNIST's "train" and "test" labels; ``data`` is the
    config's data section. Contamination is planned exactly as
    embedded.build_splits does: per seed, the pool is split into train/val and
    each split gets its digits, so the pool's digit arrays have one row per
    seed (row s, column i: pool image i under seed s, as a training or a
    validation image per pool_val_mask).
    """
    pool, test = scan["pool"], scan["test"]
    seeds = np.asarray(seeds, dtype=np.int64)
    if len(np.unique(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds.tolist()}")
    num_classes = int(pool.labels.max()) + 1
    test_pool = data["digit"]["test_pool"]
    common = {"rho": rho, "num_classes": num_classes, "data_seed": data["seed"], "chosen_over": data["digit"]["chosen_over"]}

    shape = (len(seeds), len(pool.labels))
    val_mask = np.zeros(shape, dtype=bool)
    digit_class = np.full(shape, NO_DIGIT, dtype=np.int64)
    digit_index = np.full(shape, NO_DIGIT, dtype=np.int64)
    for row, seed in enumerate(seeds):
        train_ids, val_ids = validation_split(
            pool.labels, data["validation_fraction"], int(seed), data["seed"], data["validation_split"]
        )
        val_mask[row, val_ids] = True
        for split, ids in (("train", train_ids), ("val", val_ids)):
            plan = plan_contamination(
                split=split,
                image_ids=ids,
                labels=pool.labels[ids],
                id_space=len(pool.labels),
                digit_labels=digit_labels["train"],
                **common,
            )
            digit_class[row, ids] = plan.digit_class
            digit_index[row, ids] = plan.digit_index

    test_plan = plan_contamination(
        split="test",
        image_ids=np.arange(len(test.labels)),
        labels=test.labels,
        id_space=len(test.labels),
        digit_labels=digit_labels[test_pool],
        **common,
    )
    return {
        "rho": np.float64(rho),
        "data_seed": np.int64(data["seed"]),
        "validation_fraction": np.float64(data["validation_fraction"]),
        "test_digit_pool": np.array(test_pool),
        "seeds": seeds,
        "pool_path": pool.paths,
        "pool_label": pool.labels,
        "pool_val_mask": val_mask,
        "pool_digit_class": digit_class,
        "pool_digit_index": digit_index,
        "test_path": test.paths,
        "test_label": test.labels,
        "test_digit_class": test_plan.digit_class,
        "test_digit_index": test_plan.digit_index,
    }


def save_manifest(path: Path, manifest: dict[str, np.ndarray]) -> None:
    save_arrays(path, manifest)  # atomic: a killed job never leaves half a manifest


def load_manifest(path: Path) -> dict[str, np.ndarray]:
    manifest = load_arrays(path)
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        raise DataError(
            f"{path} is not a manifest of this version (missing {', '.join(missing)}): delete it to rebuild"
        )
    return manifest


def split_of(manifest: dict[str, np.ndarray], split: Literal["train", "val", "test"], seed: int) -> SplitView:
    """The images of one split under one seed (the test split is the same for every seed)."""
    seeds = manifest["seeds"].tolist()
    if seed not in seeds:
        raise DataError(f"the manifest was built for seeds {seeds}, not seed {seed}: rebuild it with this seed")
    if split == "test":
        ids = np.arange(len(manifest["test_label"]))
        return SplitView(
            paths=manifest["test_path"],
            labels=manifest["test_label"],
            digit_class=manifest["test_digit_class"],
            digit_index=manifest["test_digit_index"],
            image_id=ids,
            digit_pool=str(manifest["test_digit_pool"]),
        )
    if split not in ("train", "val"):
        raise ValueError(f"unknown split {split!r}; expected 'train', 'val' or 'test'")
    row = seeds.index(seed)
    ids = np.flatnonzero(manifest["pool_val_mask"][row] == (split == "val"))
    return SplitView(
        paths=manifest["pool_path"][ids],
        labels=manifest["pool_label"][ids],
        digit_class=manifest["pool_digit_class"][row, ids],
        digit_index=manifest["pool_digit_index"][row, ids],
        image_id=ids,
    )


def split_digits(view: SplitView, mnist: dict[str, np.ndarray], image_size: int, style: str) -> np.ndarray:
    """Per image of the split, its digit at the corner patch's size (N x p x p, p = image_size // 4; zeros when clean).

    ``mnist`` holds MNIST's arrays (see ``load_mnist``); the view's
    ``digit_pool`` says which images its digit_index points into. Only the
    digits in use are resized, which keeps memory small next to resizing all
    of MNIST.
    """
    patch = image_size // 4
    digits = np.zeros((len(view), patch, patch), dtype=np.float32)
    rows = np.flatnonzero(view.digit_class != NO_DIGIT)
    if len(rows):
        digits[rows] = resize_digits(mnist[f"{view.digit_pool}_images"][view.digit_index[rows]], patch, style)
    return digits


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


def paste_digit(image: torch.Tensor, digit: np.ndarray | torch.Tensor, style: str) -> torch.Tensor:
    """A copy of a uint8 CHW image with the digit drawn into its top-left corner (rounded like contamination.paste_digits).

    The digit must be p x p intensities with p = image size // 4, the top-left
    patch of the 4 x 4 grid; ``style`` is its look.
    """
    digit = torch.as_tensor(digit, dtype=torch.float32)
    patch = image.shape[-1] // 4
    if digit.shape != (patch, patch):
        raise ValueError(f"the digit is {tuple(digit.shape)}, expected ({patch}, {patch}) for this image size")
    corner = image[:, :patch, :patch].permute(1, 2, 0).float()
    out = image.clone()
    out[:, :patch, :patch] = draw_digits(corner, digit, style).round().to(image.dtype).permute(2, 0, 1)
    return out


class WadingBirds(Dataset):
    """One split's images as (normalised float CHW image, label, digit class, index in the split).

    With ``normalise=False`` the image stays uint8 CHW (for splits held in memory as bytes).

    Paths live in numpy arrays rather than Python lists, so DataLoader workers
    share them without copy-on-write growth.
    """

    def __init__(
        self,
        root: Path,
        view: SplitView,
        digits: np.ndarray,
        style: str,
        transform: Literal["train", "eval"],
        image_size: int = 224,
        normalise: bool = True,
    ) -> None:
        if len(digits) != len(view):
            raise ValueError(f"{len(digits)} digits for a split of {len(view)} images (see split_digits)")
        if transform not in ("train", "eval"):
            raise ValueError(f"unknown transform {transform!r}; expected 'train' or 'eval'")
        self.root = Path(root)
        self.view = view
        self.digits = digits
        self.style = style
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
        digit_class = int(self.view.digit_class[index])
        if digit_class != NO_DIGIT:
            pixels = paste_digit(pixels, self.digits[index], self.style)
        if self.normalise:
            pixels = (pixels.float() / 255.0 - self.mean) / self.std
        return pixels, int(self.view.labels[index]), digit_class, index


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
