"""The student's training loop: distil, validate every epoch, keep the best epoch.

The loop knows nothing about a particular method or dataset: batches come from
an iterable of (images, image index), the teacher's outputs for a batch from a
callable (a cache or the teacher itself), and the objective returns a dict of
named loss terms that the loop minimises the sum of. Metrics are accumulated on
the device and read once per epoch, so the loop never waits on the host inside
an epoch. After every epoch it saves a resume checkpoint, so a killed job
continues where it stopped and ends with the same numbers.
"""

from __future__ import annotations

import copy
import logging
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
from .resume import load_resume, restore_rng_states, rng_states, save_resume

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
    from the same training.
    """

    train_batches: Callable[[torch.Generator], Iterable[Batch]]
    teacher: Callable[[torch.Tensor, torch.Tensor], TeacherOutputs]
    val_accuracy: Callable[[nn.Module, torch.device], float]
    test_accuracy: Callable[[nn.Module, torch.device], float]
    other_rules: dict[str, Callable[[nn.Module, torch.device], float]] = field(default_factory=dict)


@dataclass
class Choice:
    """The best epoch by one validation set, and the student's test accuracy there."""

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
    """The run's choice by its first selection rule (its checkpoint), the per-epoch history, and the choices
    of the other rules (``others``, by rule name)."""

    best_epoch: int
    val_acc: float
    test_acc: float
    history: list[dict[str, float]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    others: dict[str, Choice] = field(default_factory=dict)


def training_step(
    student: nn.Module,
    objective: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    teacher: TeacherOutputs,
    autocast: Callable[[], Any],
) -> dict[str, torch.Tensor]:
    """One optimiser step on a batch; returns the loss and its named terms (on the device, not synchronised)."""
    with autocast():
        terms = objective(student, x, teacher)
    loss = sum(terms.values())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"loss": loss, **terms}


def make_optimizer(params: list[nn.Parameter], cfg: dict[str, Any], device: torch.device) -> torch.optim.Optimizer:
    """AdamW with the config's learning rate and weight decay; torch's fused kernel on CUDA."""
    return torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"], fused=device.type == "cuda")


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
    """Train ``student`` with ``objective``; return the best epoch by validation accuracy.

    ``cfg`` holds epochs, batch_size, lr, weight_decay, lr_step, lr_gamma,
    channels_last and mixed_precision. Ties in validation accuracy keep the
    earlier epoch. With ``resume_path``, the state after each epoch is saved
    there and a saved state with the same ``fingerprint`` is continued from.
    """
    layout = memory_format(cfg.get("channels_last", "auto"), device)
    autocast = autocast_context(cfg.get("mixed_precision", "auto"), device)
    student.to(device=device, memory_format=layout)
    objective.to(device)
    optimizer = make_optimizer(list(student.parameters()) + list(objective.parameters()), cfg, device)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg["lr_step"], gamma=cfg["lr_gamma"])

    best = Choice()
    others = {rule: Choice() for rule in data.other_rules}
    history: list[dict[str, float]] = []
    first_epoch = 1
    saved = load_resume(resume_path, fingerprint, log)
    if saved is not None:
        student.load_state_dict(saved["student"])
        objective.load_state_dict(saved["objective"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        restore_rng_states(saved["rng"], generator)
        best = Choice(**saved["best"])
        others = {rule: Choice(**choice) for rule, choice in saved["others"].items()}
        history = saved["history"]
        first_epoch = saved["epoch"] + 1
        log.info("resuming after epoch %d of %d from %s", saved["epoch"], cfg["epochs"], resume_path)

    for epoch in range(first_epoch, cfg["epochs"] + 1):
        start = time.perf_counter()
        student.train()
        objective.train()
        sums: dict[str, torch.Tensor] = {}
        seen = 0
        for x, index in data.train_batches(generator):
            x = x.to(device, non_blocking=True).contiguous(memory_format=layout)
            terms = training_step(student, objective, optimizer, x, data.teacher(x, index), autocast)
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + value.detach().float() * len(index)
            seen += len(index)
        schedule.step()

        with autocast():
            val_acc = data.val_accuracy(student, device)
            other_acc = {rule: accuracy_of(student, device) for rule, accuracy_of in data.other_rules.items()}
        record = {"epoch": epoch, **{k: float(v) / max(seen, 1) for k, v in sums.items()}}
        record.update(val_acc=val_acc, **{f"val_acc_{rule}": acc for rule, acc in other_acc.items()})
        record.update(lr=schedule.get_last_lr()[0], seconds=time.perf_counter() - start)
        history.append(record)
        best.offer(epoch, val_acc, student)
        for rule, acc in other_acc.items():
            others[rule].offer(epoch, acc, student)
        terms_text = " ".join(f"{k} {v:.4f}" for k, v in record.items() if k in sums)
        others_text = "".join(f" {rule} {acc:.2f} best {others[rule].val_acc:.2f}@{others[rule].best_epoch}" for rule, acc in other_acc.items())
        log.info(
            "epoch %d/%d %s val_acc %.2f best %.2f@%d%s %.1fs",
            epoch, cfg["epochs"], terms_text, val_acc, best.val_acc, best.best_epoch, others_text, record["seconds"],
        )
        if resume_path is not None:
            save_resume(resume_path, fingerprint, epoch, {
                "student": student.state_dict(),
                "objective": objective.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "rng": rng_states(generator),
                "best": best.saved(),
                "others": {rule: choice.saved() for rule, choice in others.items()},
                "history": history,
            })

    for rule, choice in others.items():
        student.load_state_dict(choice.best_state)
        with autocast():
            choice.test_acc = data.test_accuracy(student, device)
        log.info("%s selection: best epoch %d: val_acc %.2f test_acc %.2f", rule, choice.best_epoch, choice.val_acc, choice.test_acc)
    if best.best_state:
        student.load_state_dict(best.best_state)
    with autocast():
        best.test_acc = data.test_accuracy(student, device)
    log.info("best epoch %d: val_acc %.2f test_acc %.2f", best.best_epoch, best.val_acc, best.test_acc)
    return TrainingOutcome(best.best_epoch, best.val_acc, best.test_acc, history, best.best_state, others)
