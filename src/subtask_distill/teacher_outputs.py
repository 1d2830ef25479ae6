"""Where a student run gets the frozen teacher's outputs from: computed once, or by the teacher on every batch.

With fixed training inputs (no augmentation, as in the embedded study) the
teacher's outputs never change: its subtask logits are computed once per
(pair, rho, seed) by their own rule and shared by every run, and each layer
loss's targets once per run, before the first epoch. With a cache folder, the
targets are also stored on disk, keyed by everything they depend on, so the
runs of the other lambdas load them instead of running the teacher again
(``training.teacher_cache``). With augmented inputs the teacher runs online,
on every batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from .data.tensors import batch_indices
from .io import save_torch
from .models.taps import FeatureTaps, pool_to
from .objective import DistillationObjective, TeacherOutputs

CACHE_VERSION = 1
MODES = ("auto", "cached", "online")


def resolve_mode(mode: str, augmented: bool) -> str:
    """``auto`` caches exactly when the inputs are fixed; caching augmented inputs would be wrong."""
    if mode not in MODES:
        raise ValueError(f"training.teacher_outputs must be one of {MODES}, got {mode!r}")
    if mode == "auto":
        return "online" if augmented else "cached"
    if mode == "cached" and augmented:
        raise ValueError("training.teacher_outputs: cached needs fixed inputs, but this study augments its training images")
    return mode


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def target_cache_key(
    *,
    teacher_checkpoint: Path,
    splits: Path,
    teacher_spec: dict[str, Any],
    sizes: Sequence[Sequence[int]],
    method: str,
    options: dict[str, Any] | None,
    subspace: Path | None,
    rho: str,
    seed: int,
) -> str:
    """A key that changes with anything the cached layer targets depend on (lambda is not one of them).

    The file digests cover the teacher's weights, the exact images (data
    settings, rho and seed all change the splits file) and SubDistill's
    fitted subspace; rho and seed are also named so that two studies never
    share an entry by accident.
    """
    parts = {
        "version": CACHE_VERSION,
        "teacher": file_digest(teacher_checkpoint),
        "splits": file_digest(splits),
        "subspace": file_digest(subspace) if subspace is not None else None,
        "teacher_spec": teacher_spec,
        "sizes": [list(map(int, size)) for size in sizes],
        "method": method,
        "options": options or {},
        "rho": rho,
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


@torch.no_grad()
def teacher_features(
    taps: FeatureTaps, x: torch.Tensor, sizes: Sequence[Sequence[int]], device: torch.device, batch_size: int = 256
) -> list[torch.Tensor]:
    """The teacher's tapped maps on every image of ``x``, pooled to the aligned sizes, on the CPU."""
    chunks = [
        [pool_to(feature, size).float().cpu() for feature, size in zip(taps(x[index].to(device))[1], sizes)]
        for index in batch_indices(len(x), batch_size)
    ]
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


class CachedTeacher:
    """Teacher outputs computed once for fixed inputs, held on the training device and looked up by image index.

    Keeping them on the device means no host-to-device copy (and no wait) per batch.
    """

    def __init__(self, outputs: TeacherOutputs, device: torch.device):
        self.outputs = TeacherOutputs(outputs.logits.to(device), [t.to(device) for t in outputs.targets])
        self.device = device

    def __call__(self, x: torch.Tensor, index: torch.Tensor) -> TeacherOutputs:
        return self.outputs.select(index.to(self.device), self.device)


class OnlineTeacher:
    """The frozen teacher run on every batch: needed when the inputs are augmented."""

    def __init__(self, taps: FeatureTaps, objective: DistillationObjective, autocast=contextlib.nullcontext):
        self.taps = taps
        self.objective = objective
        self.autocast = autocast

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, index: torch.Tensor) -> TeacherOutputs:
        with self.autocast():
            logits, features = self.taps(x)
        targets = self.objective.teacher_targets([f.float() for f in features]) if self.objective.layer_losses else []
        return TeacherOutputs(logits.float(), targets)
