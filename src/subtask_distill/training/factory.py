"""Runs wired from their inputs: the students, their objectives, the teacher's outputs on each batch and the data.

``build_bank`` is the only place that assembles runs: a bank is the runs of one
(pair, method, rho, seed), one per lambda, trained together on one stream of
batches and one teacher pass per batch; ``build_distiller`` is a bank of one.
The training job gives it inputs read from the workflow's files
(``jobs.load_run_inputs``); the benchmarks and the tests give it tensors and
networks they make.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from ..methods import Method, get_method
from ..methods.subspace import LayerSubspace
from ..models.build import build_network
from ..models.taps import FeatureTaps
from ..runtime import autocast_context, memory_format, seed_everything
from ..study import Run, layer_positions
from .loop import Batch, DistillationData, Member, TensorAccuracy, TensorBatches, TrainingOutcome, train_bank
from .objective import DistillationObjective, TeacherOutputs, build_objective
from .resume import device_rng_state
from .teacher_source import (
    CachedTeacher,
    OnlineTeacher,
    TeacherPass,
    cached_tensors,
    layer_targets,
    needs_teacher,
    resolve_mode,
    teacher_features,
)

CACHE_VERSION = 2


@dataclass(frozen=True)
class TargetCache:
    """A folder of teacher layer targets shared by the runs of every lambda (``training.teacher_cache``).

    ``identity`` names everything the targets depend on besides the objective
    (digests of the teacher checkpoint, the splits and the subspace; rho and
    seed); the factory completes the key with the layers and the method.
    """

    directory: Path
    identity: dict[str, Any]

    def key(self, **objective_parts: Any) -> str:
        parts = {"version": CACHE_VERSION, **self.identity, **objective_parts}
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class RunInputs:
    """Everything one run is built from, in memory.

    ``train_x`` holds the fixed training images, or ``train_loader`` makes the
    augmented batches (decoded by workers, in the order of the run's
    generator); exactly one of them is set. ``teacher_logits`` are the
    teacher's subtask logits on the fixed training images. ``teacher`` is the
    frozen subtask teacher, needed by layer-wise methods and online teacher
    outputs; ``subspaces`` the fitted subspace per layer, for SubDistill.
    ``val_x``/``val_y`` validate for the study's first selection rule,
    ``other_rules`` (rule -> (images, labels)) for the others.
    ``fingerprint`` is what a resume checkpoint must match.
    """

    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    train_x: torch.Tensor | None = None
    train_loader: Callable[[torch.Generator], Iterable[Batch]] | None = None
    teacher_logits: torch.Tensor | None = None
    teacher: nn.Module | None = None
    subspaces: Sequence[LayerSubspace] | None = None
    cache: TargetCache | None = None
    other_rules: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    fingerprint: str = ""

    @property
    def augmented(self) -> bool:
        return self.train_loader is not None


@dataclass
class Distiller(Member):
    """One student run of a bank, ready to train."""

    run: Run | None = None
    teacher_mode: str = "cached"


@dataclass
class Bank:
    """The runs of one (pair, method, rho, seed), ready to train together (a single run: a bank of one)."""

    members: list[Distiller]
    generator: torch.Generator
    training: dict[str, Any]
    fingerprint: str

    @property
    def teacher_mode(self) -> str:
        return self.members[0].teacher_mode

    def train(self, log: logging.Logger, device: torch.device, resume_path: Path | None = None) -> list[TrainingOutcome]:
        return train_bank(self.members, self.training, self.generator, log, device, resume_path, self.fingerprint)


def bank_problem(runs: Sequence[Run]) -> str | None:
    """Why ``runs`` cannot form a bank, or None: its members differ only in lambda."""
    if not runs:
        return "a bank needs at least one run"
    first = runs[0]
    shared = [(r.pair, r.method, r.layers, r.rho, r.seed) for r in runs]
    if len(set(shared)) > 1:
        return f"the runs of a bank differ only in lambda, but these differ in (pair, method, layers, rho, seed): {sorted(set(shared))}"
    if len({r.lam for r in runs}) < len(runs):
        return f"a bank of {first.pair}/{first.variant} lists a lambda twice: {[r.lam for r in runs]}"
    return None


def build_distiller(
    config: dict[str, Any], run: Run, inputs: RunInputs, device: torch.device, log: logging.Logger | None = None
) -> Distiller:
    """Wire one run: the member of a bank of one."""
    return build_bank(config, [run], inputs, device, log).members[0]


def build_bank(
    config: dict[str, Any], runs: Sequence[Run], inputs: RunInputs, device: torch.device, log: logging.Logger | None = None
) -> Bank:
    """Wire the runs of one (pair, method, rho, seed): each student and its objective, the teacher's
    outputs they share, and the one stream of batches.

    Each member is seeded first, exactly as if it were built alone, so its
    student's and layer losses' initial weights depend only on its run's seed
    and config, and its own random state for training is the one it would
    have alone; then the batch order's generator is seeded as a lone run's.
    """
    problem = bank_problem(runs)
    if problem:
        raise ValueError(problem)
    if (inputs.train_x is None) == (inputs.train_loader is None):
        raise ValueError("RunInputs needs exactly one of train_x (fixed images) and train_loader (augmented)")
    first = runs[0]
    training = config["training"]
    method = get_method(first.method)
    mode = resolve_mode(training["teacher_outputs"], inputs.augmented)
    layout = memory_format(training["channels_last"], device)
    taps = None
    if needs_teacher(method.uses_layers, mode):
        if inputs.teacher is None:
            raise ValueError(f"method {method.name!r} with teacher_outputs {mode!r} needs the teacher")
        taps = FeatureTaps(
            inputs.teacher, paired_layers(config, first, "teacher") if method.uses_layers else [], named_in=inputs.teacher.model
        )
    if mode == "online":
        inputs.teacher.to(memory_format=layout)  # it runs on every batch: in the layout convolutions run fastest
        shared = TeacherPass(taps, autocast_context(training["mixed_precision"], device))

    built, cached = [], None
    for run in runs:
        seed_everything(run.seed)
        student = build_network(config["pairs"][run.pair]["student"], num_classes=len(config["data"]["subtask_classes"])).to(device)
        objective = wire_objective(config, run, method, student, taps, inputs, device)
        if mode == "online":
            teacher = OnlineTeacher(shared, objective, layout)
        else:  # every lambda's targets are the same: computed (or loaded) once
            cached = cached or CachedTeacher(cached_outputs(config, run, objective, taps, inputs, device, log), device, layout)
            teacher = cached
        built.append((run, student, objective, teacher, device_rng_state()))
    if mode != "online" and taps is not None:
        taps.remove()

    generator = torch.Generator().manual_seed(first.seed)  # as seed_everything's: the batch order of a lone run
    batch_size = training["batch_size"]
    batches = inputs.train_loader(generator) if inputs.augmented else TensorBatches(inputs.train_x.to(device), batch_size)
    evaluation = {
        "val_accuracy": TensorAccuracy(inputs.val_x.to(device), inputs.val_y.to(device)),
        "test_accuracy": TensorAccuracy(inputs.test_x.to(device), inputs.test_y.to(device)),
        "other_rules": {rule: TensorAccuracy(x.to(device), y.to(device)) for rule, (x, y) in inputs.other_rules.items()},
    }
    members = [
        Distiller(f"lambda {run.lam}" if len(runs) > 1 else "", student, objective, DistillationData(batches, teacher, **evaluation), rng, run, mode)
        for run, student, objective, teacher, rng in built
    ]
    return Bank(members, generator, training, inputs.fingerprint)


def paired_layers(config: dict[str, Any], run: Run, role: str) -> list[str]:
    """The teacher's or the student's layers this run aligns: the pair's, or the run's subset of them."""
    layers = config["pairs"][run.pair][role]["layers"]
    return [layers[i] for i in layer_positions(run.layers, len(layers))]


def wire_objective(
    config: dict[str, Any],
    run: Run,
    method: Method,
    student: nn.Module,
    teacher_taps: FeatureTaps | None,
    inputs: RunInputs,
    device: torch.device,
) -> DistillationObjective:
    """KD, plus for a layer-wise method one layer loss per paired layer, sized from one example image."""
    temperature = config["training"]["temperature"]
    if not method.uses_layers:
        return build_objective(method, None, temperature, 0.0)
    if method.subspace and inputs.subspaces is None:
        raise ValueError(f"method {method.name!r} needs a fitted {method.subspace!r} subspace")
    example = inputs.val_x[:1].to(device)
    student_taps = FeatureTaps(student, paired_layers(config, run, "student"))
    subspaces = None
    if method.subspace:
        positions = layer_positions(run.layers, len(config["pairs"][run.pair]["teacher"]["layers"]))
        subspaces = [inputs.subspaces[i] for i in positions]
    return build_objective(
        method, config["methods"][run.method], temperature, float(run.lam),
        student_taps, teacher_taps.shapes(example), subspaces, example,
    ).to(device)


def cached_outputs(
    config: dict[str, Any],
    run: Run,
    objective: DistillationObjective,
    taps: FeatureTaps | None,
    inputs: RunInputs,
    device: torch.device,
    log: logging.Logger | None,
) -> TeacherOutputs:
    """The teacher's outputs on every fixed training image: its logits, and each layer loss's target."""
    if inputs.teacher_logits is None:
        raise ValueError("cached teacher outputs need the teacher's logits on the training images")
    if len(inputs.teacher_logits) != len(inputs.train_x):
        raise ValueError(f"{len(inputs.teacher_logits)} teacher logits for {len(inputs.train_x)} training images")
    if not objective.layer_losses:
        return TeacherOutputs(inputs.teacher_logits)

    def compute() -> list[torch.Tensor]:
        features = teacher_features(taps, inputs.train_x, objective.sizes, device)
        return layer_targets(objective, [f.to(device) for f in features])

    if inputs.cache is None:
        return TeacherOutputs(inputs.teacher_logits, compute())
    key = inputs.cache.key(
        teacher_spec=config["pairs"][run.pair]["teacher"],
        sizes=[list(map(int, size)) for size in objective.sizes],
        method=run.method,
        layers=run.layers,
        options=config["methods"][run.method] or {},
    )
    targets = cached_tensors(inputs.cache.directory, key, compute, log or logging.getLogger(__name__))
    return TeacherOutputs(inputs.teacher_logits, targets)
