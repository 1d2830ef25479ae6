"""One grid cell end to end: data and teacher outputs in, checkpoint and metrics out."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from .data.contamination import SPLITS
from .data.tensors import images_to_tensor
from .evaluate import accuracy, predict_logits
from .io import load_arrays, save_arrays, save_torch, write_json
from .methods import get_method
from .objective import DistillationObjective
from .provenance import provenance
from .runtime import seed_everything
from .study import Run
from .teacher import build_network, load_subtask_teacher
from .objective import TeacherOutputs
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


def run_student(
    config: dict[str, Any],
    run: Run,
    splits_path: Path,
    logits_path: Path,
    out_dir: Path,
    device: torch.device,
    log: logging.Logger,
) -> dict[str, Any]:
    """Train one student and write ``student.pt`` and ``metrics.json`` into ``out_dir``."""
    started = time.perf_counter()
    generator = seed_everything(run.seed)
    tensors = split_tensors(load_arrays(splits_path))
    teacher_logits = torch.from_numpy(load_arrays(logits_path)["train_logits"])
    if len(teacher_logits) != len(tensors["train_x"]):
        raise ValueError(f"{logits_path} holds {len(teacher_logits)} training logits for {len(tensors['train_x'])} images")
    data = DistillationData(
        train_x=tensors["train_x"],
        train_teacher=TeacherOutputs(teacher_logits),
        val_x=tensors["val_x"],
        val_y=tensors["val_y"],
        test_x=tensors["test_x"],
        test_y=tensors["test_y"],
    )
    spec = config["pairs"][run.pair]["student"]
    student = build_network(spec, num_classes=len(config["data"]["subtask_classes"]))
    objective = DistillationObjective(get_method(run.method), temperature=config["training"]["temperature"])
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
