"""Training the embedded teacher (the stand-in for an ImageNet model): cross-entropy on clean images."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.tensors import batch_indices
from ..runtime import memory_format
from .evaluate import accuracy, predict_logits


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
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"], fused=device.type == "cuda"
    )
    steps_per_epoch = sum(1 for _ in batch_indices(len(x), batch_size, torch.Generator().manual_seed(0)))
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg["lr"], total_steps=max(epochs, 1) * max(steps_per_epoch, 1)
    )
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
            optimizer.step()
            schedule.step()
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
