"""The student's training loop: distil, validate every epoch, keep the best epoch.

The loop knows nothing about a particular method: the objective returns a dict
of named loss terms for a batch and the loop minimises their sum. Metrics are
accumulated on the device and read once per epoch, so the loop never waits on
the host inside an epoch.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .data.tensors import batch_indices
from .evaluate import accuracy, predict_logits
from .objective import DistillationObjective, TeacherOutputs
from .runtime import memory_format


@dataclass
class DistillationData:
    """Inputs of one student run: training images with the teacher's outputs on them, labelled val/test sets."""

    train_x: torch.Tensor
    train_teacher: TeacherOutputs
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


@dataclass
class TrainingOutcome:
    best_epoch: int
    val_acc: float
    test_acc: float
    history: list[dict[str, float]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)


def train_student(
    student: nn.Module,
    objective: DistillationObjective,
    data: DistillationData,
    cfg: dict[str, Any],
    generator: torch.Generator,
    log: logging.Logger,
    device: torch.device = torch.device("cpu"),
) -> TrainingOutcome:
    """Train ``student`` with ``objective``; return the best epoch by validation accuracy.

    ``cfg`` holds epochs, batch_size, lr, weight_decay, lr_step, lr_gamma and
    channels_last. Ties in validation accuracy keep the earlier epoch.
    """
    layout = memory_format(cfg.get("channels_last", "auto"), device)
    student.to(device=device, memory_format=layout)
    objective.to(device)
    params = list(student.parameters()) + list(objective.parameters())
    # foreach: one fused update over all parameter tensors (faster on CPU than the per-tensor default).
    optimizer = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"], foreach=True)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg["lr_step"], gamma=cfg["lr_gamma"])

    best = TrainingOutcome(best_epoch=0, val_acc=-1.0, test_acc=float("nan"))
    for epoch in range(1, cfg["epochs"] + 1):
        start = time.perf_counter()
        student.train()
        objective.train()
        sums: dict[str, torch.Tensor] = {}
        seen = 0
        for idx in batch_indices(len(data.train_x), cfg["batch_size"], generator):
            x = data.train_x[idx].to(device, non_blocking=True).contiguous(memory_format=layout)
            terms = objective(student, x, data.train_teacher.select(idx, device))
            loss = sum(terms.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for name, value in {"loss": loss, **terms}.items():
                sums[name] = sums.get(name, 0.0) + value.detach() * len(idx)
            seen += len(idx)
        scheduler.step()

        val_acc = accuracy(predict_logits(student, data.val_x, device=device), data.val_y)
        record = {"epoch": epoch, **{k: float(v) / max(seen, 1) for k, v in sums.items()}}
        record.update(val_acc=val_acc, lr=optimizer.param_groups[0]["lr"], seconds=time.perf_counter() - start)
        best.history.append(record)
        if val_acc > best.val_acc:
            best.best_epoch, best.val_acc = epoch, val_acc
            best.best_state = copy.deepcopy(student.state_dict())
        terms_text = " ".join(f"{k} {v:.4f}" for k, v in record.items() if k in sums)
        log.info(
            "epoch %d/%d %s val_acc %.2f best %.2f@%d %.1fs",
            epoch, cfg["epochs"], terms_text, val_acc, best.val_acc, best.best_epoch, record["seconds"],
        )

    if best.best_state:
        student.load_state_dict(best.best_state)
    best.test_acc = accuracy(predict_logits(student, data.test_x, device=device), data.test_y)
    log.info("best epoch %d: val_acc %.2f test_acc %.2f", best.best_epoch, best.val_acc, best.test_acc)
    return best
