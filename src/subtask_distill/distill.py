"""One grid cell end to end: data and teacher outputs in, checkpoint and metrics out."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from .data.contamination import SPLITS
from .data.tensors import batch_indices, images_to_tensor
from .evaluate import accuracy, predict_logits
from .io import load_arrays, save_arrays, save_torch, write_json
from .methods import get_method
from .models.taps import FeatureTaps
from .objective import DistillationObjective, TeacherOutputs, build_objective
from .provenance import provenance
from .runtime import seed_everything
from .study import Run
from .subspace import fit_subspaces, load_subspaces, save_subspaces
from .teacher import build_network, load_subtask_teacher
from .train import DistillationData, train_student


def split_tensors(arrays: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Normalised image tensors and label tensors of every split."""
    out = {}
    for split in SPLITS:
        out[f"{split}_x"] = images_to_tensor(arrays[f"{split}_x"], arrays["channel_mean"], arrays["channel_std"])
        out[f"{split}_y"] = torch.from_numpy(arrays[f"{split}_y"])
    return out


def compute_teacher_logits(
    config: dict[str, Any], pair: str, checkpoint: Path, splits_path: Path, out: Path, device: torch.device
) -> dict[str, float]:
    """Write the teacher's subtask logits on every split; return its accuracy per split.

    With fixed inputs (no augmentation) these logits are all a student run
    needs from the teacher, so every run of this (rho, seed) reuses them.
    """
    teacher = load_subtask_teacher(checkpoint, config["pairs"][pair]["teacher"], config["data"]["subtask_classes"], device)
    tensors = split_tensors(load_arrays(splits_path))
    logits, acc = {}, {}
    for split in SPLITS:
        logits[f"{split}_logits"] = predict_logits(teacher, tensors[f"{split}_x"], device=device).numpy()
        acc[f"{split}_acc"] = accuracy(logits[f"{split}_logits"], tensors[f"{split}_y"])
    save_arrays(out, logits)
    return acc


def teacher_with_taps(config: dict[str, Any], pair: str, checkpoint: Path, device: torch.device) -> FeatureTaps:
    """The frozen subtask teacher, tapped at the pair's teacher layers."""
    spec = config["pairs"][pair]["teacher"]
    teacher = load_subtask_teacher(checkpoint, spec, config["data"]["subtask_classes"], device)
    return FeatureTaps(teacher, spec["layers"], named_in=teacher.model)


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
    train_x = split_tensors(load_arrays(splits_path))["train_x"]
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


@torch.no_grad()
def precompute_teacher_targets(
    objective: DistillationObjective, teacher_taps: FeatureTaps, x: torch.Tensor, batch_size: int, device: torch.device
) -> list[torch.Tensor]:
    """Every layer loss's teacher target on fixed inputs, computed once for the whole run."""
    chunks = [objective.teacher_targets(teacher_taps(x[index].to(device))[1]) for index in batch_indices(len(x), batch_size)]
    return [torch.cat([chunk[layer] for chunk in chunks]).cpu() for layer in range(len(objective.layer_losses))]


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
) -> dict[str, Any]:
    """Train one student and write ``student.pt`` and ``metrics.json`` into ``out_dir``.

    Layer-wise methods also need the teacher checkpoint, and SubDistill the
    fitted subspace of this (pair, rho, seed).
    """
    started = time.perf_counter()
    generator = seed_everything(run.seed)
    tensors = split_tensors(load_arrays(splits_path))
    teacher_logits = torch.from_numpy(load_arrays(logits_path)["train_logits"])
    if len(teacher_logits) != len(tensors["train_x"]):
        raise ValueError(f"{logits_path} holds {len(teacher_logits)} training logits for {len(tensors['train_x'])} images")
    method = get_method(run.method)
    pair = config["pairs"][run.pair]
    spec = pair["student"]
    student = build_network(spec, num_classes=len(config["data"]["subtask_classes"])).to(device)
    teacher = TeacherOutputs(teacher_logits)
    if method.uses_layers:
        if teacher_path is None:
            raise ValueError(f"method {method.name!r} needs the teacher checkpoint")
        if method.subspace and subspace_path is None:
            raise ValueError(f"method {method.name!r} needs a fitted subspace file")
        teacher_taps = teacher_with_taps(config, run.pair, teacher_path, device)
        example = tensors["train_x"][:1].to(device)
        subspaces = load_subspaces(subspace_path, method.subspace, pair["teacher"]["layers"]) if method.subspace else None
        objective = build_objective(
            method, config["methods"][run.method], config["training"]["temperature"], float(run.lam),
            FeatureTaps(student, spec["layers"]), teacher_taps.shapes(example), subspaces, example,
        ).to(device)
        teacher.targets = precompute_teacher_targets(objective, teacher_taps, tensors["train_x"], 256, device)
        teacher_taps.remove()
    else:
        objective = build_objective(method, None, config["training"]["temperature"], 0.0)
    data = DistillationData(
        train_x=tensors["train_x"],
        train_teacher=teacher,
        val_x=tensors["val_x"],
        val_y=tensors["val_y"],
        test_x=tensors["test_x"],
        test_y=tensors["test_y"],
    )
    log.info(
        "run %s: %d train / %d val / %d test images, %d student parameters, device %s",
        run.path, len(data.train_x), len(data.val_x), len(data.test_x),
        sum(p.numel() for p in student.parameters()), device,
    )
    outcome = train_student(student, objective, data, config["training"], generator, log, device)

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
    return metrics
