"""Training the embedded teacher (the stand-in for an ImageNet model)."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .data.tensors import batch_indices
from .evaluate import accuracy, predict_logits
from .optim import AdamW, one_cycle
from .runtime import memory_format


def train_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: dict[str, Any],
    generator: torch.Generator,
    log: logging.Logger,
    eval_set: tuple[torch.Tensor, torch.Tensor] | None = None,
    device: torch.device = torch.device("cpu"),
) -> list[dict[str, float]]:
    """Cross-entropy training with AdamW and a one-cycle schedule; returns per-epoch history."""
    epochs, batch_size = cfg["epochs"], cfg["batch_size"]
    layout = memory_format(cfg.get("channels_last", "auto"), device)
    model.to(device=device, memory_format=layout)
    optimizer = AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    steps_per_epoch = sum(1 for _ in batch_indices(len(x), batch_size, torch.Generator().manual_seed(0)))
    total_steps = max(epochs, 1) * max(steps_per_epoch, 1)
    step = 0
    history = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        for idx in batch_indices(len(x), batch_size, generator):
            inputs = x[idx].to(device, non_blocking=True).contiguous(memory_format=layout)
            targets = y[idx].to(device, non_blocking=True)
            logits = model(inputs)
            loss = F.cross_entropy(logits, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.lr, optimizer.beta1 = one_cycle(step, total_steps, cfg["lr"])
            optimizer.step()
            step += 1
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(1) == targets).sum()
            seen += len(idx)
        record = {
            "epoch": epoch,
            "loss": float(loss_sum) / seen,
            "train_acc": float(correct) * 100.0 / seen,
            "seconds": time.perf_counter() - start,
        }
        if eval_set is not None:
            record["eval_acc"] = accuracy(predict_logits(model, eval_set[0], device=device), eval_set[1])
        history.append(record)
        log.info(
            "epoch %d/%d loss %.4f train_acc %.2f%s %.1fs",
            epoch,
            epochs,
            record["loss"],
            record["train_acc"],
            f" eval_acc {record['eval_acc']:.2f}" if eval_set is not None else "",
            record["seconds"],
        )
    return history


def build_network(spec: dict[str, Any], num_classes: int) -> nn.Module:
    """Instantiate a teacher or student from its config entry (``arch``, ``kwargs``)."""
    from .models import create_model

    return create_model(spec["arch"], num_classes=spec.get("num_classes", num_classes), **spec.get("kwargs", {}))


def save_checkpoint(path, model: nn.Module, spec: dict[str, Any], **extra: Any) -> None:
    from .io import save_torch

    save_torch(path, {"arch": spec["arch"], "spec": spec, "state_dict": model.state_dict(), **extra})


def load_subtask_teacher(path, spec: dict[str, Any], subtask_classes, device: torch.device) -> nn.Module:
    """The frozen teacher restricted to the subtask logits, in eval mode."""
    from .models import SubtaskHead

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if checkpoint.get("arch") != spec["arch"]:
        raise ValueError(f"teacher checkpoint {path} holds {checkpoint.get('arch')!r}, config expects {spec['arch']!r}")
    model = build_network(spec, num_classes=spec.get("num_classes", 0) or len(subtask_classes))
    model.load_state_dict(checkpoint["state_dict"])
    teacher = SubtaskHead(model, subtask_classes).to(device).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher
