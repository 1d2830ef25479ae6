"""One grid cell end to end: data and teacher outputs in, checkpoint and metrics out."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .config import config_hash
from .data.contamination import SPLITS
from .data.imagenet import WadingBirds, load_manifest, make_loader, split_digits, split_of
from .data.mnist import load_mnist
from .data.sources import split_arrays
from .data.tensors import NormalizedImages, batch_indices
from .evaluate import accuracy, predict_logits
from .io import load_arrays, save_arrays, save_torch, write_json
from .methods import get_method
from .models.taps import FeatureTaps
from .objective import DistillationObjective, TeacherOutputs, build_objective
from .provenance import provenance
from .runtime import autocast_context, memory_format, seed_everything
from .study import Run
from .subspace import fit_subspaces, load_subspaces, save_subspaces
from .teacher import build_network, load_subtask_teacher
from .teacher_outputs import (
    CachedTeacher,
    OnlineTeacher,
    cached_tensors,
    file_digest,
    layer_targets,
    resolve_mode,
    target_cache_key,
    teacher_features,
)
from .train import DistillationData, LoaderBatches, train_student


def split_tensors(arrays: dict[str, Any], which: Sequence[str] = SPLITS) -> dict[str, NormalizedImages | torch.Tensor]:
    """Images (normalised batch by batch when indexed) and label tensors of the splits in ``which``."""
    out = {}
    for split in which:
        out[f"{split}_x"] = NormalizedImages(arrays[f"{split}_x"], arrays["channel_mean"], arrays["channel_std"])
        out[f"{split}_y"] = torch.from_numpy(np.asarray(arrays[f"{split}_y"]))
    return out


def load_split_tensors(config: dict[str, Any], splits_path: Path, seed: int, which: Sequence[str] = SPLITS):
    """``split_tensors`` of one (rho, seed), for any data kind."""
    data = config["data"]
    return split_tensors(split_arrays(data, splits_path, seed, which, data["workers"]), which)


def compute_teacher_logits(
    config: dict[str, Any], pair: str, checkpoint: Path, splits_path: Path, seed: int, out: Path, device: torch.device
) -> dict[str, float]:
    """Write the teacher's subtask logits on every split; return its accuracy per split.

    With fixed inputs (no augmentation) these logits are all a student run
    needs from the teacher, so every run of this (rho, seed) reuses them.
    """
    teacher = load_subtask_teacher(checkpoint, config["pairs"][pair]["teacher"], config["data"]["subtask_classes"], device)
    tensors = load_split_tensors(config, splits_path, seed)
    logits, acc = {}, {}
    for split in SPLITS:
        logits[f"{split}_logits"] = predict_logits(teacher, tensors[f"{split}_x"], device=device).numpy()
        acc[f"{split}_acc"] = accuracy(logits[f"{split}_logits"], tensors[f"{split}_y"])
    save_arrays(out, logits)
    return acc


def teacher_with_taps(
    config: dict[str, Any], pair: str, checkpoint: Path, device: torch.device, layers: Sequence[str] | None = None
) -> FeatureTaps:
    """The frozen subtask teacher, tapped at ``layers`` (default: the pair's teacher layers)."""
    spec = config["pairs"][pair]["teacher"]
    teacher = load_subtask_teacher(checkpoint, spec, config["data"]["subtask_classes"], device)
    return FeatureTaps(teacher, spec["layers"] if layers is None else layers, named_in=teacher.model)


def student_channels(config: dict[str, Any], pair: str, example: torch.Tensor) -> list[int]:
    """K per layer: the student's channel count at each paired layer."""
    spec = config["pairs"][pair]["student"]
    student = build_network(spec, num_classes=len(config["data"]["subtask_classes"]))
    return [shape[0] for shape in FeatureTaps(student, spec["layers"]).shapes(example)]


def fit_pair_subspaces(
    config: dict[str, Any],
    pair: str,
    kind: str,
    seed: int,
    checkpoint: Path,
    splits_path: Path,
    out: Path,
    device: torch.device,
) -> list[dict[str, Any]]:
    """Fit and save the subspace of every paired layer on the training split; return a summary per layer."""
    taps = teacher_with_taps(config, pair, checkpoint, device)
    train_x = load_split_tensors(config, splits_path, seed, which=("train",))["train_x"]
    batch_size = config["subspace"]["batch_size"]

    def batches():
        for index in batch_indices(len(train_x), batch_size):
            yield train_x[index].to(device)

    directions = student_channels(config, pair, train_x[:1])
    subspaces = fit_subspaces(taps, batches, directions, kind, config["subspace"]["positions"], seed)
    layers = config["pairs"][pair]["teacher"]["layers"]
    save_subspaces(out, kind, subspaces, layers)
    return [
        {
            "teacher_layer": name,
            "teacher_channels": int(s.basis.shape[0]),
            "directions": int(s.basis.shape[1]),
            "captured_variance": s.captured,
            "top_eigenvalue": float(s.eigenvalues[0]),
        }
        for name, s in zip(layers, subspaces)
    ]


def run_fingerprint(config: dict[str, Any], run: Run, inputs: Sequence[Path | None]) -> str:
    """What a resume checkpoint must match: the run, its settings and its exact input files."""
    digests = [file_digest(path) for path in inputs if path is not None]
    return config_hash({"run": run.path, "config": config, "inputs": digests})


def teacher_source(
    config: dict[str, Any],
    run: Run,
    mode: str,
    objective: DistillationObjective,
    taps: FeatureTaps | None,
    train_x: torch.Tensor,
    teacher_logits: torch.Tensor,
    paths: dict[str, Path | None],
    device: torch.device,
    log: logging.Logger,
) -> CachedTeacher | OnlineTeacher:
    """The teacher's outputs for training batches: cached (fixed inputs) or computed online by ``taps``."""
    if mode == "online":
        return OnlineTeacher(taps, objective, autocast_context(config["training"]["mixed_precision"], device))
    if not objective.layer_losses:
        return CachedTeacher(TeacherOutputs(teacher_logits), device)

    def compute() -> list[torch.Tensor]:
        features = teacher_features(taps, train_x, objective.sizes, device)
        return layer_targets(objective, [f.to(device) for f in features])

    if paths["cache_dir"] is None:
        targets = compute()
    else:
        key = target_cache_key(
            teacher_checkpoint=paths["teacher"], splits=paths["splits"], teacher_spec=config["pairs"][run.pair]["teacher"],
            sizes=objective.sizes, method=run.method, options=config["methods"][run.method], subspace=paths["subspace"],
            rho=run.rho, seed=run.seed,
        )
        targets = cached_tensors(paths["cache_dir"], key, compute, log)
    targets = objective.held_targets(targets, memory_format(config["training"]["channels_last"], device))
    return CachedTeacher(TeacherOutputs(teacher_logits, targets), device)


def augmented_batches(
    config: dict[str, Any], splits_path: Path, seed: int, batch_size: int, generator: torch.Generator, device: torch.device
) -> LoaderBatches:
    """Training batches decoded and augmented by DataLoader workers (ImageNet), in the order of ``generator``."""
    data = config["data"]
    view = split_of(load_manifest(splits_path), "train", seed)
    style = data["digit"]["style"]
    digits = split_digits(view, load_mnist(Path(data["mnist_root"])), data["image_size"], style)
    dataset = WadingBirds(Path(data["imagenet_root"]), view, digits, style, "train", data["image_size"])
    return LoaderBatches(make_loader(dataset, batch_size, True, data["workers"], generator, device.type == "cuda"))


def run_student(
    config: dict[str, Any],
    run: Run,
    splits_path: Path,
    logits_path: Path,
    out_dir: Path,
    device: torch.device,
    log: logging.Logger,
    teacher_path: Path | None = None,
    subspace_path: Path | None = None,
    cache_dir: Path | None = None,
    resume_path: Path | None = None,
) -> dict[str, Any]:
    """Train one student and write ``student.pt`` and ``metrics.json`` into ``out_dir``.

    Layer-wise methods also need the teacher checkpoint, and SubDistill the
    fitted subspace of this (pair, rho, seed). ``cache_dir`` shares the
    teacher's layer targets with the runs of the other lambdas; ``resume_path`` holds the resume checkpoint
    (deleted once the run's outputs are written).
    """
    started = time.perf_counter()
    generator = seed_everything(run.seed)
    augmented = config["data"]["augment"]
    mode = resolve_mode(config["training"]["teacher_outputs"], augmented)
    # Augmented training images are decoded batch by batch; fixed ones are held in memory with the rest.
    tensors = load_split_tensors(config, splits_path, run.seed, ("val", "test") if augmented else SPLITS)
    teacher_logits = torch.from_numpy(load_arrays(logits_path)["train_logits"])
    if not augmented and len(teacher_logits) != len(tensors["train_x"]):
        raise ValueError(f"{logits_path} holds {len(teacher_logits)} training logits for {len(tensors['train_x'])} images")
    method = get_method(run.method)
    pair = config["pairs"][run.pair]
    spec = pair["student"]
    student = build_network(spec, num_classes=len(config["data"]["subtask_classes"])).to(device)
    taps = None
    if method.uses_layers or mode == "online":
        if teacher_path is None:
            raise ValueError(f"method {method.name!r} with teacher_outputs {mode!r} needs the teacher checkpoint")
        taps = teacher_with_taps(config, run.pair, teacher_path, device, layers=None if method.uses_layers else [])
    if method.uses_layers:
        if method.subspace and subspace_path is None:
            raise ValueError(f"method {method.name!r} needs a fitted subspace file")
        example = tensors["val_x"][:1].to(device)
        subspaces = load_subspaces(subspace_path, method.subspace, pair["teacher"]["layers"]) if method.subspace else None
        objective = build_objective(
            method, config["methods"][run.method], config["training"]["temperature"], float(run.lam),
            FeatureTaps(student, spec["layers"]), taps.shapes(example), subspaces, example,
        ).to(device)
    else:
        objective = build_objective(method, None, config["training"]["temperature"], 0.0)
    paths = {"teacher": teacher_path, "splits": splits_path, "subspace": subspace_path, "cache_dir": cache_dir}
    teacher = teacher_source(config, run, mode, objective, taps, tensors.get("train_x"), teacher_logits, paths, device, log)
    if taps is not None and mode == "cached":
        taps.remove()
    on_device = {name: tensor.to(device) for name, tensor in tensors.items()}
    batch_size = config["training"]["batch_size"]
    if augmented:
        on_device["train_x"] = augmented_batches(config, splits_path, run.seed, batch_size, generator, device)
    data = DistillationData.in_memory(on_device, teacher, batch_size)
    log.info(
        "run %s: %d train / %d val / %d test images (%s), teacher outputs %s, %d student parameters, device %s",
        run.path, len(on_device["train_x"]), len(tensors["val_x"]), len(tensors["test_x"]),
        "augmented" if augmented else "fixed", mode, sum(p.numel() for p in student.parameters()), device,
    )
    fingerprint = run_fingerprint(config, run, [splits_path, logits_path, teacher_path, subspace_path])
    outcome = train_student(student, objective, data, config["training"], generator, log, device, resume_path, fingerprint)

    save_torch(out_dir / "student.pt", {"arch": spec["arch"], "spec": spec, "state_dict": outcome.best_state, "epoch": outcome.best_epoch})
    metrics = {
        "pair": run.pair,
        "method": run.method,
        "rho": float(run.rho),
        "lambda": float(run.lam),
        "seed": run.seed,
        "best_epoch": outcome.best_epoch,
        "epochs_run": len(outcome.history),
        "val_acc": outcome.val_acc,
        "test_acc": outcome.test_acc,
        "wall_time_s": time.perf_counter() - started,
        "history": outcome.history,
        "provenance": provenance(config),
    }
    write_json(out_dir / "metrics.json", metrics)
    if resume_path is not None:
        resume_path.unlink(missing_ok=True)
    return metrics
