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
from ..data.device_augment import AugmentedBatches, decode_once
from ..data.imagenet import WadingBirds, load_manifest, make_loader, split_of
from ..data.sources import split_arrays, study_artifact
from ..data.tensors import NormalizedImages, batch_indices
from ..io import file_digest, load_arrays, save_arrays, save_torch, write_json
from ..methods import get_method
from ..methods.subspace import fit_subspaces, load_subspace_files, save_subspaces
from ..models.build import build_network, load_subtask_teacher
from ..models.taps import FeatureTaps
from ..provenance import provenance
from ..study import Run
from .evaluate import accuracy, predict_logits
from .factory import RunInputs, TargetCache, build_bank
from .loop import LoaderBatches, TrainingOutcome
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
    checkpoint, SubDistill the fitted subspace of this (pair, rho, seed) (a
    bank of several methods: one file per subspace kind); ``cache_dir``
    shares the teacher's layer targets with the runs of the other lambdas.
    """

    splits: Path
    logits: Path
    teacher: Path | None = None
    subspaces: tuple[Path, ...] = ()
    cache_dir: Path | None = None


def bank_fingerprint(config: dict[str, Any], runs: Sequence[Run], files: RunFiles) -> str:
    """What a resume checkpoint must match: the bank's runs, their settings and their exact input files."""
    paths = (files.splits, files.logits, files.teacher, *files.subspaces)
    digests = [file_digest(path) for path in paths if path is not None]
    return config_hash({"runs": [run.path for run in runs], "config": config, "inputs": digests})


def cache_identity(files: RunFiles, run: Run) -> dict[str, Any]:
    """What cached layer targets depend on besides the objective: the exact teacher, images (data settings,
    rho and seed all change the splits file) and subspace; rho and seed are also named so that two studies
    never share an entry by accident. Lambda is not one of them."""
    return {
        "teacher": file_digest(files.teacher),
        "splits": file_digest(files.splits),
        "subspaces": [file_digest(path) for path in files.subspaces],
        "rho": run.rho,
        "seed": run.seed,
    }


def augmented_batches(config: dict[str, Any], splits_path: Path, seed: int, device: torch.device, log: logging.Logger):
    """A maker of the augmented training batches (ImageNet), in a generator's order: decoded once and augmented
    on the device (``data.augment_on: device``), or decoded and augmented by DataLoader workers every epoch."""
    data = config["data"]
    view = split_of(load_manifest(splits_path), "train", seed)
    root, artifact = Path(data["imagenet_root"]), study_artifact(data)
    batch_size, workers = config["training"]["batch_size"], data["workers"]
    if data["augment_on"] == "device":
        started = time.perf_counter()
        images = decode_once(root, view, data["decoded_max_side"], workers)
        batches = AugmentedBatches(images, view, artifact, batch_size, data["image_size"], device)
        log.info("decoded %d training images once in %.1fs: %.2f GB on %s", len(images), time.perf_counter() - started,
                 images.nbytes / 1e9, device)
        return lambda generator: batches
    dataset = WadingBirds(root, view, artifact, "train", data["image_size"])
    return lambda generator: LoaderBatches(make_loader(dataset, batch_size, True, workers, generator, device.type == "cuda"))


# The validation split each selection rule chooses lambda* and the best epoch on.
VALIDATION_OF_RULE = {"oracle": "val", "spurious": SPURIOUS_VAL}


def load_run_inputs(
    config: dict[str, Any], runs: Sequence[Run], files: RunFiles, device: torch.device, log: logging.Logger
) -> RunInputs:
    """Read the inputs of a bank's runs (one pair, rho and seed): images, the teacher's logits, and the
    teacher and subspaces where its methods need them."""
    run = runs[0]
    augmented = config["data"]["augment"]
    mode = resolve_mode(config["training"]["teacher_outputs"], augmented)
    methods = [get_method(name) for name in dict.fromkeys(r.method for r in runs)]
    rules = config.get("selection", ["oracle"])
    validation = [VALIDATION_OF_RULE[rule] for rule in rules]
    # Augmented training images are decoded batch by batch; fixed ones are held in memory with the rest.
    which = (*(() if augmented else ("train",)), *validation, "test")
    tensors = load_split_tensors(config, files.splits, run.seed, which)
    teacher_spec = config["pairs"][run.pair]["teacher"]
    teacher = None
    if any(needs_teacher(method.uses_layers, mode) for method in methods):
        if files.teacher is None:
            raise ValueError(f"methods {[m.name for m in methods]} with teacher_outputs {mode!r} need the teacher checkpoint")
        teacher = load_subtask_teacher(files.teacher, teacher_spec, config["data"]["subtask_classes"], device)
    kinds = {method.subspace for method in methods} - {None}
    subspaces = load_subspace_files(files.subspaces, teacher_spec["layers"])
    if kinds - set(subspaces):
        raise ValueError(f"methods {[m.name for m in methods]} need fitted {sorted(kinds)} subspace files,"
                         f" given {sorted(subspaces) or 'none'}")
    cache = None
    if files.cache_dir is not None and mode == "cached" and any(method.uses_layers for method in methods):
        cache = TargetCache(files.cache_dir, cache_identity(files, run))
    others = {rule: (tensors[f"{split}_x"], tensors[f"{split}_y"]) for rule, split in zip(rules[1:], validation[1:])}
    return RunInputs(
        val_x=tensors[f"{validation[0]}_x"], val_y=tensors[f"{validation[0]}_y"],
        test_x=tensors["test_x"], test_y=tensors["test_y"], other_rules=others,
        train_x=None if augmented else tensors["train_x"],
        train_loader=augmented_batches(config, files.splits, run.seed, device, log) if augmented else None,
        teacher_logits=torch.from_numpy(load_arrays(files.logits)["train_logits"]),
        teacher=teacher, subspaces=subspaces, cache=cache, fingerprint=bank_fingerprint(config, runs, files),
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
    """Train one student (a bank of one) and write ``student.pt`` and ``metrics.json`` into ``out_dir``."""
    return run_bank(config, [run], files, [out_dir], device, log, resume_path)[0]


def run_bank(
    config: dict[str, Any],
    runs: Sequence[Run],
    files: RunFiles,
    out_dirs: Sequence[Path],
    device: torch.device,
    log: logging.Logger,
    resume_path: Path | None = None,
) -> list[dict[str, Any]]:
    """Train the students of one bank together (one pair, rho and seed); write each one's ``student.pt`` and
    ``metrics.json`` into its folder of ``out_dirs``, and return their metrics.

    ``resume_path`` holds the bank's per-epoch resume checkpoint (deleted once every output is written).
    """
    if len(out_dirs) != len(runs):
        raise ValueError(f"{len(runs)} runs but {len(out_dirs)} output folders")
    started = time.perf_counter()
    bank = build_bank(config, runs, load_run_inputs(config, runs, files, device, log), device, log)
    data = bank.members[0].data
    log.info(
        "bank %s rho %s seed %s: %s; %d train / %d val / %d test images (%s), teacher outputs %s,"
        " %d student parameters each, device %s",
        runs[0].pair, runs[0].rho, runs[0].seed, bank_contents(runs),
        len(data.train_batches), len(data.val_accuracy.y), len(data.test_accuracy.y),
        "augmented" if config["data"]["augment"] else "fixed", bank.teacher_mode,
        sum(p.numel() for p in bank.members[0].student.parameters()), device,
    )
    outcomes = bank.train(log, device, resume_path)
    seconds = time.perf_counter() - started
    results = [
        write_run_outputs(config, run, outcome, out_dir, seconds / len(runs), len(runs), device)
        for run, outcome, out_dir in zip(runs, outcomes, out_dirs)
    ]
    if resume_path is not None:
        resume_path.unlink(missing_ok=True)
    return results


def bank_contents(runs: Sequence[Run]) -> str:
    """Each variant of a bank with its lambdas: "at lambdas 0.1, 1; kd lambda 0"."""
    lams: dict[str, list[str]] = {}
    for run in runs:
        lams.setdefault(run.variant, []).append(run.lam)
    return "; ".join(f"{variant} lambda{'s' if len(ls) > 1 else ''} {', '.join(ls)}" for variant, ls in lams.items())


def write_run_outputs(
    config: dict[str, Any], run: Run, outcome: TrainingOutcome, out_dir: Path, seconds: float, bank_size: int, device: torch.device
) -> dict[str, Any]:
    """A run's ``student.pt`` (its best weights by the first selection rule) and ``metrics.json``."""
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
        "diverged_at_epoch": outcome.diverged_at,
        "val_acc": outcome.val_acc,
        "test_acc": outcome.test_acc,
        "selections": chosen,
        "wall_time_s": seconds,
        "bank_size": bank_size,
        "history": outcome.history,
        "provenance": provenance(config, device),
    }
    write_json(out_dir / "metrics.json", metrics)
    return metrics
