"""Runs wired from their inputs: the students, their objectives, the teacher's outputs on each batch and the data.

``build_bank`` is the only place that assembles runs: a bank is runs of one
(pair, rho, seed) (the lambdas of one method, or every method and lambda),
trained together on one stream of batches and one teacher pass per batch;
``build_distiller`` is a bank of one.
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
    subspaces: dict[str, Sequence[LayerSubspace]] = field(default_factory=dict)
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
    """Runs of one (pair, rho, seed), ready to train together (a single run: a bank of one)."""

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
    """Why ``runs`` cannot form a bank, or None: they share one (pair, rho, seed), each variant and lambda once."""
    if not runs:
        return "a bank needs at least one run"
    shared = {(r.pair, r.rho, r.seed) for r in runs}
    if len(shared) > 1:
        return f"the runs of a bank share one (pair, rho, seed), but these differ: {sorted(shared)}"
    cells = [(r.variant, r.lam) for r in runs]
    twice = sorted({cell for cell in cells if cells.count(cell) > 1})
    if twice:
        return f"a bank lists a run twice: {', '.join(f'{variant} lambda {lam}' for variant, lam in twice)}"
    return None


def build_distiller(
    config: dict[str, Any], run: Run, inputs: RunInputs, device: torch.device, log: logging.Logger | None = None
) -> Distiller:
    """Wire one run: the member of a bank of one."""
    return build_bank(config, [run], inputs, device, log).members[0]


def build_bank(
    config: dict[str, Any], runs: Sequence[Run], inputs: RunInputs, device: torch.device, log: logging.Logger | None = None
) -> Bank:
    """Wire runs of one (pair, rho, seed): each student and its objective, the teacher's outputs they share,
    and the one stream of batches.

    The teacher is tapped at every layer some member aligns, and each member reads its own layers from
    the one pass. Each member is seeded first, exactly as if it were built alone, so its student's and
    layer losses' initial weights depend only on its run's seed and config, and its own random state for
    training is the one it would have alone; then the batch order's generator is seeded as a lone run's.
    """
    problem = bank_problem(runs)
    if problem:
        raise ValueError(problem)
    if (inputs.train_x is None) == (inputs.train_loader is None):
        raise ValueError("RunInputs needs exactly one of train_x (fixed images) and train_loader (augmented)")
    first = runs[0]
    training = config["training"]
    methods = {run.method: get_method(run.method) for run in runs}
    mode = resolve_mode(training["teacher_outputs"], inputs.augmented)
    layout = memory_format(training["channels_last"], device)
    aligned = {run.variant: aligned_positions(config, run, methods[run.method]) for run in runs}
    tapped = sorted(set().union(*aligned.values()))
    taps, teacher_shapes = None, []
    if any(needs_teacher(method.uses_layers, mode) for method in methods.values()):
        if inputs.teacher is None:
            raise ValueError(f"methods {sorted(methods)} with teacher_outputs {mode!r} need the teacher")
        layers = config["pairs"][first.pair]["teacher"]["layers"]
        taps = FeatureTaps(inputs.teacher, [layers[i] for i in tapped], named_in=inputs.teacher.model)
        teacher_shapes = taps.shapes(inputs.val_x[:1].to(device)) if tapped else []
    if mode == "online":
        inputs.teacher.to(memory_format=layout)  # it runs on every batch: in the layout convolutions run fastest
        shared = TeacherPass(taps, autocast_context(training["mixed_precision"], device))

    built, cached = [], {}
    for run in runs:
        picks = [tapped.index(i) for i in aligned[run.variant]]
        seed_everything(run.seed)
        student = build_network(config["pairs"][run.pair]["student"], num_classes=len(config["data"]["subtask_classes"])).to(device)
        objective = wire_objective(config, run, methods[run.method], student, [teacher_shapes[k] for k in picks], inputs, device)
        if mode == "online":
            teacher = OnlineTeacher(shared, objective, picks, run.variant, layout)
        else:  # every lambda's targets are the same: computed (or loaded) once per variant
            if run.variant not in cached:
                outputs = cached_outputs(config, run, objective, taps, picks, inputs, device, log)
                cached[run.variant] = CachedTeacher(outputs, device, layout)
            teacher = cached[run.variant]
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
        Distiller(member_name(run, runs), student, objective, DistillationData(batches, teacher, **evaluation), rng, run, mode)
        for run, student, objective, teacher, rng in built
    ]
    return Bank(members, generator, training, inputs.fingerprint)


def member_name(run: Run, runs: Sequence[Run]) -> str:
    """How a member's log lines start: "" alone, "lambda 1" among lambdas, "at lambda 1" among methods."""
    if len(runs) == 1:
        return ""
    if len({r.variant for r in runs}) == 1:
        return f"lambda {run.lam}"
    return f"{run.variant} lambda {run.lam}"


def aligned_positions(config: dict[str, Any], run: Run, method: Method) -> list[int]:
    """0-based positions among the pair's paired layers of the layers this run aligns (none: output-only)."""
    if not method.uses_layers:
        return []
    return layer_positions(run.layers, len(config["pairs"][run.pair]["teacher"]["layers"]))


def paired_layers(config: dict[str, Any], run: Run, role: str) -> list[str]:
    """The teacher's or the student's layers this run aligns: the pair's, or the run's subset of them."""
    layers = config["pairs"][run.pair][role]["layers"]
    return [layers[i] for i in layer_positions(run.layers, len(layers))]


def wire_objective(
    config: dict[str, Any],
    run: Run,
    method: Method,
    student: nn.Module,
    teacher_shapes: Sequence[tuple[int, int, int]],
    inputs: RunInputs,
    device: torch.device,
) -> DistillationObjective:
    """KD, plus for a layer-wise method one layer loss per paired layer (``teacher_shapes``: the teacher's
    maps there), sized from one example image."""
    temperature = config["training"]["temperature"]
    if not method.uses_layers:
        return build_objective(method, None, temperature, 0.0)
    subspaces = None
    if method.subspace:
        if method.subspace not in inputs.subspaces:
            raise ValueError(f"method {method.name!r} needs a fitted {method.subspace!r} subspace")
        subspaces = [inputs.subspaces[method.subspace][i] for i in aligned_positions(config, run, method)]
    example = inputs.val_x[:1].to(device)
    student_taps = FeatureTaps(student, paired_layers(config, run, "student"))
    return build_objective(
        method, config["methods"][run.method], temperature, float(run.lam),
        student_taps, teacher_shapes, subspaces, example,
    ).to(device)


def cached_outputs(
    config: dict[str, Any],
    run: Run,
    objective: DistillationObjective,
    taps: FeatureTaps | None,
    picks: Sequence[int],
    inputs: RunInputs,
    device: torch.device,
    log: logging.Logger | None,
) -> TeacherOutputs:
    """The teacher's outputs on every fixed training image: its logits, and each layer loss's target
    (from the tapped maps at ``picks``)."""
    if inputs.teacher_logits is None:
        raise ValueError("cached teacher outputs need the teacher's logits on the training images")
    if len(inputs.teacher_logits) != len(inputs.train_x):
        raise ValueError(f"{len(inputs.teacher_logits)} teacher logits for {len(inputs.train_x)} training images")
    if not objective.layer_losses:
        return TeacherOutputs(inputs.teacher_logits)

    def compute() -> list[torch.Tensor]:
        features = teacher_features(taps, inputs.train_x, objective.sizes, device, picks)
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
