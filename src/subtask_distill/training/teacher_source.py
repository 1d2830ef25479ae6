"""Where a student run gets the frozen teacher's outputs from: computed once, or by the teacher on every batch.

With fixed training inputs (no augmentation, as in the embedded study) the
teacher's outputs never change: its subtask logits are computed once per
(pair, rho, seed) by their own rule and shared by every run, and each layer
loss's targets once per run, before the first epoch. With a cache folder, the
targets are also stored on disk, keyed by everything they depend on, so the
runs of the other lambdas load them instead of running the teacher again
(``training.teacher_cache``). With augmented inputs the teacher runs online,
on every batch: once per batch for a whole bank (``TeacherPass``), and the
layer losses' targets, the same for every lambda, once per batch and method too.

A layer loss's ``teacher_target`` may depend on fixed buffers (a subspace) but
never on trained parameters: that is what lets the targets be shared by every
lambda, cached or online.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..data.tensors import batch_indices
from ..io import save_torch
from ..models.taps import FeatureTaps, pool_to
from .objective import DistillationObjective, TeacherOutputs

MODES = ("auto", "cached", "online")


def needs_teacher(uses_layers: bool, mode: str) -> bool:
    """Whether a run needs the teacher network itself: for layer targets, or to run it online."""
    return uses_layers or mode == "online"


def resolve_mode(mode: str, augmented: bool) -> str:
    """``auto`` caches exactly when the inputs are fixed; caching augmented inputs would be wrong."""
    if mode not in MODES:
        raise ValueError(f"training.teacher_outputs must be one of {MODES}, got {mode!r}")
    if mode == "auto":
        return "online" if augmented else "cached"
    if mode == "cached" and augmented:
        raise ValueError("training.teacher_outputs: cached needs fixed inputs, but this study augments its training images")
    return mode


@torch.no_grad()
def teacher_features(
    taps: FeatureTaps,
    x: torch.Tensor,
    sizes: Sequence[Sequence[int]],
    device: torch.device,
    picks: Sequence[int],
    batch_size: int = 256,
) -> list[torch.Tensor]:
    """The teacher's maps tapped at ``picks`` on every image of ``x``, pooled to the aligned sizes, on the CPU."""
    chunks = []
    for index in batch_indices(len(x), batch_size):
        features = taps(x[index].to(device))[1]
        chunks.append([pool_to(features[k], size).float().cpu() for k, size in zip(picks, sizes)])
    return [torch.cat([chunk[layer] for chunk in chunks]) for layer in range(len(sizes))]


def cached_tensors(
    cache_dir: Path, key: str, compute: Callable[[], list[torch.Tensor]], log: logging.Logger
) -> list[torch.Tensor]:
    """Load the tensors stored under ``key``, or compute and store them.

    Concurrent runs may both compute an entry; each write is atomic, so the
    last one simply replaces an identical file.
    """
    path = cache_dir / f"{key}.pt"
    if path.exists():
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if payload["key"] == key:
                log.info("teacher targets from cache %s", path)
                return payload["tensors"]
            log.warning("cache entry %s holds another key; recomputing", path)
        except Exception as error:  # truncated or corrupt entry
            log.warning("unreadable cache entry %s (%s); recomputing", path, error)
    tensors = compute()
    save_torch(path, {"key": key, "tensors": tensors})
    log.info("teacher targets cached in %s", path)
    return tensors


@torch.no_grad()
def layer_targets(objective: DistillationObjective, features: Sequence[torch.Tensor], batch_size: int = 512) -> list[torch.Tensor]:
    """Each layer loss's target for every image, from the (cached) aligned teacher features."""
    chunks = [objective.teacher_targets([f[index] for f in features]) for index in batch_indices(len(features[0]), batch_size)]
    return [torch.cat([chunk[layer] for chunk in chunks]) for layer in range(len(features))]


def in_layout(targets: Sequence[torch.Tensor], layout: torch.memory_format) -> list[torch.Tensor]:
    """Layer targets that are feature maps, in the student's memory format: a loss then compares two maps
    of one layout, and a channels-last map is gathered by rows (``gather_rows``)."""
    return [t.contiguous(memory_format=layout) if t.dim() == 4 else t for t in targets]


class CachedTeacher:
    """Teacher outputs computed once for fixed inputs, held on the training device and looked up by image index.

    Keeping them on the device means no host-to-device copy (and no wait) per batch.
    """

    def __init__(self, outputs: TeacherOutputs, device: torch.device, layout: torch.memory_format = torch.contiguous_format):
        self.outputs = TeacherOutputs(outputs.logits.to(device), in_layout([t.to(device) for t in outputs.targets], layout))
        self.device = device

    def __call__(self, x: torch.Tensor, index: torch.Tensor) -> TeacherOutputs:
        return self.outputs.select(index.to(self.device), self.device)


class TeacherPass:
    """The frozen teacher on a batch, run once however many students of a bank ask for it.

    The students of a bank are handed the very same batch tensor one after the other; the pass keeps the
    last batch's outputs, and the layer targets of each method (by key), until a new batch comes.
    """

    def __init__(self, taps: FeatureTaps, autocast=contextlib.nullcontext):
        self.taps = taps
        self.autocast = autocast
        self._batch: torch.Tensor | None = None
        self._outputs: tuple[torch.Tensor, list[torch.Tensor]] = (torch.empty(0), [])
        self._targets: dict[str, list[torch.Tensor]] = {}

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The teacher's logits and tapped feature maps on ``x`` (float32)."""
        if x is not self._batch:
            with self.autocast():
                logits, features = self.taps(x)
            self._batch, self._outputs, self._targets = x, (logits.float(), [f.float() for f in features]), {}
        return self._outputs

    def targets(self, x: torch.Tensor, key: str, compute: Callable[[list[torch.Tensor]], list[torch.Tensor]]) -> list[torch.Tensor]:
        """``compute(features)`` on ``x``, once per batch for each ``key``: the members with one method and
        layer subset share their targets."""
        features = self(x)[1]
        if key not in self._targets:
            self._targets[key] = compute(features)
        return self._targets[key]


class OnlineTeacher:
    """The frozen teacher run on every batch (needed when the inputs are augmented), as one student reads it:
    its logits, and the targets of the student's layer losses from the tapped maps at ``picks``; ``key``
    names the method and layer subset, whose targets every lambda shares."""

    def __init__(
        self,
        teacher: TeacherPass,
        objective: DistillationObjective,
        picks: Sequence[int],
        key: str,
        layout: torch.memory_format = torch.contiguous_format,
    ):
        self.teacher = teacher
        self.objective = objective
        self.picks = list(picks)
        self.key = key
        self.layout = layout

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, index: torch.Tensor) -> TeacherOutputs:
        logits, _ = self.teacher(x)
        if not self.objective.layer_losses:
            return TeacherOutputs(logits)
        return TeacherOutputs(logits, self.teacher.targets(x, self.key, self._targets))

    def _targets(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        return in_layout(self.objective.teacher_targets([features[k] for k in self.picks]), self.layout)
