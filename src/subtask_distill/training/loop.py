"""The students' training loop: distil, validate every epoch, keep the best epoch.

The loop trains a bank: the students of one (pair, method, rho, seed), one per
lambda, that see the same batches in the same order. Each batch is made once
and the teacher's outputs on it computed once (the members' teacher sources
share them); every member then takes its own forward and backward pass, and
one AdamW step updates them all. A single run is a bank of one. Nothing a
member computes depends on the others: each is seeded as it would be alone and
draws from its own random state, so its weights and metrics equal those of the
same run trained alone, bitwise.

The loop knows nothing about a particular method or dataset: batches come from
an iterable of (images, image index), the teacher's outputs for a batch from a
callable (a cache or the teacher itself), and the objective returns a dict of
named loss terms that the loop minimises the sum of. Metrics are accumulated on
the device and read once per epoch, so the loop never waits on the host inside
an epoch; a member whose epoch loss is not finite stops there, alone. After
every epoch the bank saves one resume checkpoint of every member, so a killed
job continues where it stopped and ends with the same numbers.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

from ..data.tensors import batch_indices
from ..runtime import autocast_context, memory_format
from .evaluate import accuracy, predict_logits
from .objective import DistillationObjective, TeacherOutputs
from .resume import device_rng_state, load_resume, restore_rng_states, rng_states, save_resume, set_device_rng_state

Batch = tuple[torch.Tensor, torch.Tensor]  # images, their indices in the training split


@dataclass
class TensorBatches:
    """Shuffled mini-batches of an in-memory image tensor (the embedded study's fixed inputs)."""

    x: torch.Tensor
    batch_size: int

    def __len__(self) -> int:
        return len(self.x)

    def __call__(self, generator: torch.Generator) -> Iterable[Batch]:
        for index in batch_indices(len(self.x), self.batch_size, generator):
            yield self.x[index.to(self.x.device)], index


@dataclass
class LoaderBatches:
    """Mini-batches from a DataLoader of (image, label, digit, index), e.g. decoded and augmented by workers.

    The loader's sampler draws from the run's generator, so a resumed run sees the same order; with
    persistent workers, the augmentations after a resume are drawn afresh (equally distributed, not equal).
    """

    loader: Any

    def __len__(self) -> int:
        return len(self.loader.dataset)

    def __call__(self, generator: torch.Generator) -> Iterable[Batch]:
        for x, _, _, index in self.loader:
            yield x, index


@dataclass
class TensorAccuracy:
    """Accuracy of a model on an in-memory labelled set."""

    x: torch.Tensor
    y: torch.Tensor

    def __call__(self, model: nn.Module, device: torch.device) -> float:
        return accuracy(predict_logits(model, self.x, device=device), self.y)


@dataclass
class DistillationData:
    """Inputs of one student run: training batches, the teacher's outputs on them, and the evaluation sets.

    ``val_accuracy`` is the validation set of the study's first selection rule, which chooses the run's
    checkpoint; ``other_rules`` the validation sets of the other rules, each choosing its own best epoch
    from the same training. The members of a bank hold the same ``train_batches``.
    """

    train_batches: Callable[[torch.Generator], Iterable[Batch]]
    teacher: Callable[[torch.Tensor, torch.Tensor], TeacherOutputs]
    val_accuracy: Callable[[nn.Module, torch.device], float]
    test_accuracy: Callable[[nn.Module, torch.device], float]
    other_rules: dict[str, Callable[[nn.Module, torch.device], float]] = field(default_factory=dict)


@dataclass
class Member:
    """One student of a bank. ``rng`` is torch's random state right after the student and its objective were
    built (what its own training draws from, as it would alone); None: the state the loop starts with."""

    name: str
    student: nn.Module
    objective: DistillationObjective
    data: DistillationData
    rng: dict[str, Any] | None = None


@dataclass
class Choice:
    """The best epoch by one validation set, and the student's test accuracy there.

    Epoch 0 is the initial weights: what a student keeps if its first epoch already diverges.
    """

    best_epoch: int = 0
    val_acc: float = -1.0
    test_acc: float = float("nan")
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)

    def offer(self, epoch: int, val_acc: float, student: nn.Module) -> None:
        """Keep this epoch if it validates better (ties keep the earlier epoch)."""
        if val_acc > self.val_acc:
            self.best_epoch, self.val_acc = epoch, val_acc
            self.best_state = copy.deepcopy(student.state_dict())

    def saved(self) -> dict[str, Any]:
        return {"best_epoch": self.best_epoch, "val_acc": self.val_acc, "test_acc": self.test_acc, "best_state": self.best_state}


@dataclass
class TrainingOutcome:
    """The run's choice by its first selection rule (its checkpoint), the per-epoch history, the choices
    of the other rules (``others``, by rule name), and the epoch it stopped at if its loss diverged."""

    best_epoch: int
    val_acc: float
    test_acc: float
    history: list[dict[str, float]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    others: dict[str, Choice] = field(default_factory=dict)
    diverged_at: int | None = None


@dataclass
class Progress:
    """Where one member stands between epochs: all a resume checkpoint keeps of it."""

    best: Choice
    others: dict[str, Choice]
    rng: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    diverged_at: int | None = None

    def saved(self) -> dict[str, Any]:
        return {
            "best": self.best.saved(), "others": {rule: c.saved() for rule, c in self.others.items()},
            "rng": self.rng, "history": self.history, "diverged_at": self.diverged_at,
        }

    @classmethod
    def restored(cls, saved: dict[str, Any]) -> "Progress":
        others = {rule: Choice(**choice) for rule, choice in saved["others"].items()}
        return cls(Choice(**saved["best"]), others, saved["rng"], saved["history"], saved["diverged_at"])


def accumulate_gradients(
    student: nn.Module, objective: nn.Module, x: torch.Tensor, teacher: TeacherOutputs, autocast: Callable[[], Any]
) -> dict[str, torch.Tensor]:
    """Forward and backward on a batch; returns the loss and its named terms (on the device, not synchronised)."""
    with autocast():
        terms = objective(student, x, teacher)
    loss = sum(terms.values())
    loss.backward()
    return {"loss": loss, **terms}


def training_step(
    student: nn.Module,
    objective: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    teacher: TeacherOutputs,
    autocast: Callable[[], Any],
) -> dict[str, torch.Tensor]:
    """One optimiser step of one student on a batch; returns the loss and its named terms."""
    optimizer.zero_grad()
    terms = accumulate_gradients(student, objective, x, teacher, autocast)
    optimizer.step()
    return terms


def make_optimizer(params: list, cfg: dict[str, Any], device: torch.device) -> torch.optim.Optimizer:
    """AdamW with the config's learning rate and weight decay; ``params``: parameters or parameter groups
    (one per member of a bank). torch's fused kernel on CUDA, its default elsewhere.

    AdamW updates each parameter from its own gradient and state alone, so one optimiser over a bank moves
    every member exactly as its own optimiser would; a member that stopped has no gradients and is skipped.
    """
    return torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"], fused=device.type == "cuda")


@contextlib.contextmanager
def own_random_state(progress: Progress):
    """Run a member's step on its own torch random state, and give the shared one back afterwards."""
    shared = device_rng_state()
    set_device_rng_state(progress.rng)
    try:
        yield
    finally:
        progress.rng = device_rng_state()
        set_device_rng_state(shared)


def bank_step(
    members: list[Member],
    progress: list[Progress],
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    index: torch.Tensor,
    autocast: Callable[[], Any],
) -> list[dict[str, torch.Tensor]]:
    """One optimiser step of every member on the same batch, each on its own random state; returns each
    member's loss terms (on the device, not synchronised)."""
    optimizer.zero_grad()
    terms = []
    for member, state in zip(members, progress):
        with own_random_state(state):
            terms.append(accumulate_gradients(member.student, member.objective, x, member.data.teacher(x, index), autocast))
    optimizer.step()
    return terms


def bank_optimizer(members: list[Member], cfg: dict[str, Any], device: torch.device) -> torch.optim.Optimizer:
    """One AdamW over the bank: a parameter group per member (its student and its layer losses)."""
    return make_optimizer([{"params": [*m.student.parameters(), *m.objective.parameters()]} for m in members], cfg, device)


def start_progress(member: Member) -> Progress:
    """A member before its first epoch: every rule's best so far is the initial weights (epoch 0)."""
    initial = copy.deepcopy(member.student.state_dict())
    others = {rule: Choice(best_state=initial) for rule in member.data.other_rules}
    return Progress(Choice(best_state=initial), others, member.rng if member.rng is not None else device_rng_state())


def train_student(
    student: nn.Module,
    objective: DistillationObjective,
    data: DistillationData,
    cfg: dict[str, Any],
    generator: torch.Generator,
    log: logging.Logger,
    device: torch.device = torch.device("cpu"),
    resume_path: Path | None = None,
    fingerprint: str = "",
) -> TrainingOutcome:
    """Train one student: a bank of one (see ``train_bank``)."""
    member = Member("", student, objective, data)
    return train_bank([member], cfg, generator, log, device, resume_path, fingerprint)[0]


def train_bank(
    members: list[Member],
    cfg: dict[str, Any],
    generator: torch.Generator,
    log: logging.Logger,
    device: torch.device = torch.device("cpu"),
    resume_path: Path | None = None,
    fingerprint: str = "",
) -> list[TrainingOutcome]:
    """Train every member on the same batches; return each one's best epoch by validation accuracy.

    ``cfg`` holds epochs, batch_size, lr, weight_decay, lr_step, lr_gamma,
    channels_last and mixed_precision. ``generator`` orders (and, where the
    batches are augmented here, augments) the batches. Ties in validation
    accuracy keep the earlier epoch. With ``resume_path``, the state of every
    member after each epoch is saved there and a saved state with the same
    ``fingerprint`` is continued from.
    """
    batches = members[0].data.train_batches
    if any(member.data.train_batches is not batches for member in members):
        raise ValueError("the members of a bank must share one source of training batches")
    layout = memory_format(cfg.get("channels_last", "auto"), device)
    autocast = autocast_context(cfg.get("mixed_precision", "auto"), device)
    for member in members:
        member.student.to(device=device, memory_format=layout)
        member.objective.to(device)
    optimizer = bank_optimizer(members, cfg, device)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg["lr_step"], gamma=cfg["lr_gamma"])

    progress = [start_progress(member) for member in members]
    first_epoch = 1
    saved = load_resume(resume_path, fingerprint, log)
    if saved is not None:
        for member, state in zip(members, saved["members"]):
            member.student.load_state_dict(state["student"])
            member.objective.load_state_dict(state["objective"])
        progress = [Progress.restored(state["progress"]) for state in saved["members"]]
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        restore_rng_states(saved["rng"], generator)
        first_epoch = saved["epoch"] + 1
        log.info("resuming after epoch %d of %d from %s", saved["epoch"], cfg["epochs"], resume_path)

    for epoch in range(first_epoch, cfg["epochs"] + 1):
        active = [i for i, p in enumerate(progress) if p.diverged_at is None]
        if not active:
            break
        start = time.perf_counter()
        for i in active:
            members[i].student.train()
            members[i].objective.train()
        sums: dict[int, dict[str, torch.Tensor]] = {i: {} for i in active}
        seen = 0
        for x, index in batches(generator):
            x = x.to(device, non_blocking=True).contiguous(memory_format=layout)
            terms = bank_step([members[i] for i in active], [progress[i] for i in active], optimizer, x, index, autocast)
            for i, member_terms in zip(active, terms):
                for name, value in member_terms.items():
                    sums[i][name] = sums[i].get(name, 0.0) + value.detach().float() * len(index)
            seen += len(index)
        schedule.step()
        seconds = time.perf_counter() - start
        for i in active:
            finish_epoch(members[i], progress[i], epoch, sums[i], seen, schedule.get_last_lr()[0], seconds, cfg, autocast, device, log)
        if resume_path is not None:
            save_resume(resume_path, fingerprint, epoch, {
                "members": [
                    {"student": m.student.state_dict(), "objective": m.objective.state_dict(), "progress": p.saved()}
                    for m, p in zip(members, progress)
                ],
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "rng": rng_states(generator),
            })
    return [final_choices(member, p, autocast, device, log) for member, p in zip(members, progress)]


def finish_epoch(
    member: Member,
    progress: Progress,
    epoch: int,
    sums: dict[str, torch.Tensor],
    seen: int,
    lr: float,
    seconds: float,
    cfg: dict[str, Any],
    autocast: Callable[[], Any],
    device: torch.device,
    log: logging.Logger,
) -> None:
    """Validate a member after an epoch, offer the epoch to each selection rule, log it; or, if its loss
    was not finite, stop the member there (its earlier best epoch stands)."""
    student, data = member.student, member.data
    record: dict[str, float] = {"epoch": epoch, **{k: float(v) / max(seen, 1) for k, v in sums.items()}}
    prefix = f"{member.name}: " if member.name else ""
    if not math.isfinite(record.get("loss", 0.0)):
        progress.diverged_at = epoch
        progress.history.append({**record, "lr": lr, "seconds": seconds})
        log.warning("%sloss %s in epoch %d: this student stops here and keeps its best epoch %d",
                    prefix, record["loss"], epoch, progress.best.best_epoch)
        return
    with autocast():
        val_acc = data.val_accuracy(student, device)
        other_acc = {rule: accuracy_of(student, device) for rule, accuracy_of in data.other_rules.items()}
    record.update(val_acc=val_acc, **{f"val_acc_{rule}": acc for rule, acc in other_acc.items()})
    record.update(lr=lr, seconds=seconds)
    progress.history.append(record)
    best, others = progress.best, progress.others
    best.offer(epoch, val_acc, student)
    for rule, acc in other_acc.items():
        others[rule].offer(epoch, acc, student)
    terms_text = " ".join(f"{k} {v:.4f}" for k, v in record.items() if k in sums)
    others_text = "".join(f" {rule} {acc:.2f} best {others[rule].val_acc:.2f}@{others[rule].best_epoch}" for rule, acc in other_acc.items())
    log.info(
        "%sepoch %d/%d %s val_acc %.2f best %.2f@%d%s %.1fs",
        prefix, epoch, cfg["epochs"], terms_text, val_acc, best.val_acc, best.best_epoch, others_text, seconds,
    )


def final_choices(member: Member, progress: Progress, autocast: Callable[[], Any], device: torch.device, log: logging.Logger) -> TrainingOutcome:
    """Test the student at the best epoch of each selection rule; the first rule's best weights stay loaded.

    A rule whose best epoch is 0 (the student diverged in its first epoch) is validated on the initial weights here.
    """
    student, data = member.student, member.data
    prefix = f"{member.name}: " if member.name else ""
    rules = {rule: (choice, data.other_rules[rule]) for rule, choice in progress.others.items()}
    for rule, (choice, validate) in [*rules.items(), ("", (progress.best, data.val_accuracy))]:
        student.load_state_dict(choice.best_state)
        with autocast():
            if choice.best_epoch == 0:
                choice.val_acc = validate(student, device)
            choice.test_acc = data.test_accuracy(student, device)
        label = f"{rule} selection: " if rule else ""
        log.info("%s%sbest epoch %d: val_acc %.2f test_acc %.2f", prefix, label, choice.best_epoch, choice.val_acc, choice.test_acc)
    best = progress.best
    return TrainingOutcome(best.best_epoch, best.val_acc, best.test_acc, progress.history, best.best_state, progress.others, progress.diverged_at)
