"""One grid cell end to end: data and teacher outputs in, checkpoint and metrics out."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..config import config_hash
from ..data.contamination import SPLITS, SPURIOUS_VAL
from ..data.imagenet import WadingBirds, load_manifest, make_loader, split_of
from ..data.sources import split_arrays, study_artifact
from ..data.tensors import NormalizedImages, batch_indices
from ..io import file_digest, load_arrays, save_arrays, save_torch, write_json
from ..methods import get_method
from ..methods.subspace import fit_subspaces, load_subspaces, save_subspaces
from ..models.build import build_network, load_subtask_teacher
from ..models.taps import FeatureTaps
from ..provenance import provenance
from ..study import Run
from .evaluate import accuracy, predict_logits
from .factory import RunInputs, TargetCache, build_distiller
from .loop import LoaderBatches
from .teacher_source import needs_teacher, resolve_mode


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


@dataclass(frozen=True)
class RunFiles:
    """The files one student run reads, as the workflow gives them.

    Layer-wise methods and online teacher outputs also need the teacher
    checkpoint, SubDistill the fitted subspace of this (pair, rho, seed);
    ``cache_dir`` shares the teacher's layer targets with the runs of the
    other lambdas.
    """

    splits: Path
    logits: Path
    teacher: Path | None = None
    subspace: Path | None = None
    cache_dir: Path | None = None


def run_fingerprint(config: dict[str, Any], run: Run, files: RunFiles) -> str:
    """What a resume checkpoint must match: the run, its settings and its exact input files."""
    paths = (files.splits, files.logits, files.teacher, files.subspace)
    digests = [file_digest(path) for path in paths if path is not None]
    return config_hash({"run": run.path, "config": config, "inputs": digests})


def cache_identity(files: RunFiles, run: Run) -> dict[str, Any]:
    """What cached layer targets depend on besides the objective: the exact teacher, images (data settings,
    rho and seed all change the splits file) and subspace; rho and seed are also named so that two studies
    never share an entry by accident. Lambda is not one of them."""
    return {
        "teacher": file_digest(files.teacher),
        "splits": file_digest(files.splits),
        "subspace": file_digest(files.subspace) if files.subspace is not None else None,
        "rho": run.rho,
        "seed": run.seed,
    }


def augmented_loader(config: dict[str, Any], splits_path: Path, seed: int, device: torch.device):
    """A maker of the training batches decoded and augmented by DataLoader workers (ImageNet), in a generator's order."""
    data = config["data"]
    view = split_of(load_manifest(splits_path), "train", seed)
    dataset = WadingBirds(Path(data["imagenet_root"]), view, study_artifact(data), "train", data["image_size"])
    batch_size, workers = config["training"]["batch_size"], data["workers"]
    return lambda generator: LoaderBatches(make_loader(dataset, batch_size, True, workers, generator, device.type == "cuda"))


# The validation split each selection rule chooses lambda* and the best epoch on.
VALIDATION_OF_RULE = {"oracle": "val", "spurious": SPURIOUS_VAL}


def load_run_inputs(config: dict[str, Any], run: Run, files: RunFiles, device: torch.device) -> RunInputs:
    """Read a run's inputs: images, the teacher's logits, and the teacher and subspace where the method needs them."""
    augmented = config["data"]["augment"]
    mode = resolve_mode(config["training"]["teacher_outputs"], augmented)
    method = get_method(run.method)
    rules = config.get("selection", ["oracle"])
    validation = [VALIDATION_OF_RULE[rule] for rule in rules]
    # Augmented training images are decoded batch by batch; fixed ones are held in memory with the rest.
    which = (*(() if augmented else ("train",)), *validation, "test")
    tensors = load_split_tensors(config, files.splits, run.seed, which)
    teacher = None
    if needs_teacher(method.uses_layers, mode):
        if files.teacher is None:
            raise ValueError(f"method {method.name!r} with teacher_outputs {mode!r} needs the teacher checkpoint")
        teacher = load_subtask_teacher(files.teacher, config["pairs"][run.pair]["teacher"], config["data"]["subtask_classes"], device)
    subspaces = None
    if method.subspace:
        if files.subspace is None:
            raise ValueError(f"method {method.name!r} needs a fitted subspace file")
        subspaces = load_subspaces(files.subspace, method.subspace, config["pairs"][run.pair]["teacher"]["layers"])
    cache = None
    if files.cache_dir is not None and method.uses_layers and mode == "cached":
        cache = TargetCache(files.cache_dir, cache_identity(files, run))
    others = {rule: (tensors[f"{split}_x"], tensors[f"{split}_y"]) for rule, split in zip(rules[1:], validation[1:])}
    return RunInputs(
        val_x=tensors[f"{validation[0]}_x"], val_y=tensors[f"{validation[0]}_y"],
        test_x=tensors["test_x"], test_y=tensors["test_y"], other_rules=others,
        train_x=None if augmented else tensors["train_x"],
        train_loader=augmented_loader(config, files.splits, run.seed, device) if augmented else None,
        teacher_logits=torch.from_numpy(load_arrays(files.logits)["train_logits"]),
        teacher=teacher, subspaces=subspaces, cache=cache, fingerprint=run_fingerprint(config, run, files),
    )


def run_student(
    config: dict[str, Any],
    run: Run,
    files: RunFiles,
    out_dir: Path,
    device: torch.device,
    log: logging.Logger,
    resume_path: Path | None = None,
) -> dict[str, Any]:
    """Train one student and write ``student.pt`` and ``metrics.json`` into ``out_dir``.

    ``resume_path`` holds the per-epoch resume checkpoint (deleted once the run's outputs are written).
    """
    started = time.perf_counter()
    distiller = build_distiller(config, run, load_run_inputs(config, run, files, device), device, log)
    data = distiller.data
    log.info(
        "run %s: %d train / %d val / %d test images (%s), teacher outputs %s, %d student parameters, device %s",
        run.path, len(data.train_batches), len(data.val_accuracy.y), len(data.test_accuracy.y),
        "augmented" if config["data"]["augment"] else "fixed", distiller.teacher_mode,
        sum(p.numel() for p in distiller.student.parameters()), device,
    )
    outcome = distiller.train(log, device, resume_path)
    spec = config["pairs"][run.pair]["student"]
    save_torch(out_dir / "student.pt", {"arch": spec["arch"], "spec": spec, "state_dict": outcome.best_state, "epoch": outcome.best_epoch})
    rules = config.get("selection", ["oracle"])
    chosen = {rules[0]: {"best_epoch": outcome.best_epoch, "val_acc": outcome.val_acc, "test_acc": outcome.test_acc}}
    for rule, choice in outcome.others.items():
        chosen[rule] = {"best_epoch": choice.best_epoch, "val_acc": choice.val_acc, "test_acc": choice.test_acc}
    metrics = {
        "pair": run.pair,
        "method": run.variant,
        "layers": run.layers,
        "rho": run.rho,
        "lambda": run.lam,
        "seed": run.seed,
        "selection": rules[0],
        "best_epoch": outcome.best_epoch,
        "epochs_run": len(outcome.history),
        "val_acc": outcome.val_acc,
        "test_acc": outcome.test_acc,
        "selections": chosen,
        "wall_time_s": time.perf_counter() - started,
        "history": outcome.history,
        "provenance": provenance(config, device),
    }
    write_json(out_dir / "metrics.json", metrics)
    if resume_path is not None:
        resume_path.unlink(missing_ok=True)
    return metrics
