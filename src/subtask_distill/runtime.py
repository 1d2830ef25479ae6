"""Process-level set-up shared by every script: threads, seeds, device, logging."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import sys
from typing import Callable, ContextManager

import numpy as np
import torch


def configure_threads(threads: int) -> None:
    """Size torch's thread pools from the job's thread budget.

    Snakemake runs several jobs side by side; each must stay within the
    ``threads`` it declared or they oversubscribe the cores and all slow down.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once parallel work has started
        pass


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch generator for data order."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def select_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was requested but CUDA is not available on this node")
    return device


def setup_logging(name: str) -> logging.Logger:
    """Log lines with a timestamp to stderr (Snakemake sends stderr to the rule's log)."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    return logging.getLogger(name)


def memory_format(channels_last: bool | str, device: torch.device) -> torch.memory_format:
    """The memory format for conv nets: ``"auto"`` means channels-last on CUDA only.

    The embedded config turns it on for the CPU too (faster there for every
    method); a no-op for non-conv layers either way.
    """
    if channels_last == "auto":
        channels_last = device.type == "cuda"
    return torch.channels_last if channels_last else torch.contiguous_format


def memory_format_of(tensor: torch.Tensor) -> torch.memory_format:
    """Channels-last for a 4-d tensor laid out so (and not also contiguous), else the contiguous format."""
    if tensor.dim() == 4 and not tensor.is_contiguous() and tensor.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def autocast_context(mixed_precision: str, device: torch.device) -> Callable[[], ContextManager]:
    """A factory of the forward passes' autocast context: ``auto`` means bf16 on CUDA, fp32 elsewhere.

    bf16 keeps float32's range, so no loss scaling is needed.
    """
    if mixed_precision == "auto":
        mixed_precision = "bf16" if device.type == "cuda" else "fp32"
    if mixed_precision == "fp32":
        return contextlib.nullcontext
    if mixed_precision != "bf16":
        raise ValueError(f"mixed_precision must be auto, bf16 or fp32, got {mixed_precision!r}")
    return functools.partial(torch.autocast, device_type=device.type, dtype=torch.bfloat16)
