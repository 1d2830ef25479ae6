"""The artifact registry: the spurious feature a share rho of the images carries.

An artifact kind is a subclass of ``Artifact`` in its own module, registered
under the name that ``data.artifact.kind`` selects. Its keyword options are
the section named after it, ``data.artifact.<kind>`` (as a method's are
``methods.<name>``), checked against the constructor's signature before any
job runs. Kinds come in two codings:

- class-coded (the paper's digit, a coloured mark): each contaminated image
  carries the artifact of one class, its own on training data and a random
  one on test data;
- single-class (a watermark, compression): only images of
  ``data.artifact.target_class`` carry it on training data, random images of
  every class on test data. Its code is then always the target class.

Every kind works on one uint8 H x W x 3 image at a time, at any size (32 px
embedded images, 224 px ImageNet crops: it is drawn after the crop), and is a
pure function of (image, code, instance), so contamination is deterministic.
``draw_batch`` draws a whole batch of uint8 B x 3 x H x W tensors the same
way; kinds whose drawing is tensor arithmetic override it, so that a batch
augmented on the GPU is drawn there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

GRID = 4  # occlusion's patch grid, and the digit's corner patch: image size / GRID


@dataclass(frozen=True)
class Region:
    """The rectangle an artifact occupies, in pixels."""

    top: int
    left: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)


@dataclass(frozen=True)
class ArtifactContext:
    """What every kind is built with besides its options.

    ``pools`` holds the instance images a kind draws from, per pool name
    ("train", "test"): (images, labels). Only the digit uses them (MNIST's or
    the bundled digits); ``target_class`` is the class a single-class kind marks.
    """

    image_size: int
    num_classes: int
    target_class: int = 0
    pools: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None


class Artifact:
    """One artifact kind. Subclasses set ``class_coded`` and implement ``region`` and ``draw``."""

    name: ClassVar[str] = ""
    class_coded: ClassVar[bool] = True
    variants: ClassVar[int] = 1  # single-class kinds: how many instances (e.g. corners) there are
    uses_digits: ClassVar[bool] = False  # built with digit pools (ArtifactContext.pools)

    def __init__(self, context: ArtifactContext):
        self.image_size = context.image_size
        self.num_classes = context.num_classes
        self.target_class = context.target_class
        if not self.class_coded and not 0 <= self.target_class < self.num_classes:
            raise ValueError(f"data.artifact.target_class must be a subtask class (0..{self.num_classes - 1})")

    # What can be drawn -------------------------------------------------------------------------------------------

    def pool_of(self, split: str) -> str:
        """The instance pool a split draws from (the digit's test split may use held-out digits)."""
        return "train"

    def instance_labels(self, pool: str) -> np.ndarray:
        """The code of each instance of a pool: instance i draws the artifact of class labels[i]."""
        if self.class_coded:
            return np.arange(self.num_classes, dtype=np.int64)
        return np.full(self.variants, self.target_class, dtype=np.int64)

    # Where and how -----------------------------------------------------------------------------------------------

    def region(self, instance: int) -> Region:
        raise NotImplementedError

    def draw(self, image: np.ndarray, code: int, instance: int, pool: str) -> np.ndarray:
        """A copy of ``image`` carrying instance ``instance`` (of class ``code``); pixels outside the region unchanged."""
        raise NotImplementedError

    def draw_batch(self, images: torch.Tensor, codes: np.ndarray, instances: np.ndarray, pool: str) -> torch.Tensor:
        """``images`` (uint8 B x 3 x H x W, on any device), image k carrying instance ``instances[k]`` (of class
        ``codes[k]``): the pixels ``draw`` gives each. This default draws on the host, image by image."""
        if len(images) == 0:
            return images
        host = images.permute(0, 2, 3, 1).cpu().numpy()
        drawn = np.stack([self.draw(image, int(c), int(i), pool) for image, c, i in zip(host, codes, instances)])
        return torch.from_numpy(drawn).permute(0, 3, 1, 2).to(images.device)

    def grid_patch(self, instance: int) -> int | None:
        """The patch of the 4 x 4 occlusion grid that holds the whole region, or None when it spans several."""
        patch = self.image_size // GRID
        region = self.region(instance)
        row, col = region.top // patch, region.left // patch
        bottom, right = (region.top + region.height - 1) // patch, (region.left + region.width - 1) // patch
        return row * GRID + col if (row, col) == (bottom, right) else None

    def remove(self, image: np.ndarray, clean: np.ndarray, code: int, instance: int, key: int, pool: str) -> np.ndarray:
        """``image`` without its artifact: within the region, the clean image, carrying (class-coded kinds)
        an instance of another class chosen by ``key``, so that what changes is the class the artifact names."""
        rows, cols = self.region(instance).slices
        out = image.copy()
        if self.class_coded:
            other = replacement_class(code, key, self.num_classes)
            candidates = np.flatnonzero(self.instance_labels(pool) == other)
            out[rows, cols] = self.draw(clean, other, int(candidates[key % len(candidates)]), pool)[rows, cols]
        else:
            out[rows, cols] = clean[rows, cols]
        return out


def replacement_class(code: int, key: int, num_classes: int) -> int:
    """A class other than ``code``, chosen by ``key`` (deterministic)."""
    return (code + 1 + key % (num_classes - 1)) % num_classes


_ARTIFACTS: dict[str, type[Artifact]] = {}


def register_artifact(cls: type[Artifact]) -> type[Artifact]:
    """Class decorator: register a kind under its ``name``."""
    if not cls.name or cls.name in _ARTIFACTS:
        raise ValueError(f"artifact {cls.name!r} has no name or is registered twice")
    _ARTIFACTS[cls.name] = cls
    return cls


def list_artifacts() -> list[str]:
    return list(_ARTIFACTS)


def get_artifact(name: str) -> type[Artifact]:
    try:
        return _ARTIFACTS[name]
    except KeyError:
        raise KeyError(f"unknown artifact {name!r}; registered: {', '.join(_ARTIFACTS)}") from None


ARTIFACT_SETTINGS = ("kind", "chosen_over", "target_class")  # data.artifact's keys besides the kinds' sections


def describe_artifact(spec: dict[str, Any]) -> str:
    """One line saying what a config's artifact (``data.artifact``) is, for the report and the data preview."""
    kind = get_artifact(spec["kind"])
    options = ", ".join(f"{key} {value}" for key, value in artifact_options(spec).items())
    coding = "class-coded" if kind.class_coded else f"on class {spec['target_class']} in training, any class in test"
    return f"artifact: {kind.name}{f' ({options})' if options else ''}, {coding}, chosen over the {spec['chosen_over']}"


def build_artifact(data_cfg: dict[str, Any], pools: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Artifact:
    """The configured artifact (``data.artifact``) for the config's data section."""
    spec = data_cfg["artifact"]
    context = ArtifactContext(
        image_size=data_cfg["image_size"],
        num_classes=len(data_cfg["subtask_classes"]),
        target_class=spec["target_class"],
        pools=pools,
    )
    return get_artifact(spec["kind"])(context, **artifact_options(spec))


def artifact_options(spec: dict[str, Any]) -> dict[str, Any]:
    """The options of the configured kind: its own section of ``data.artifact`` (none: its defaults)."""
    return spec.get(spec["kind"]) or {}
