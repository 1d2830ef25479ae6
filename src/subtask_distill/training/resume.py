"""Resume checkpoints: a killed or preempted training job continues from its last finished epoch.

At the end of every epoch the loop saves everything the next epoch depends on,
for every student of the bank (model, loss-module parameters, its own random
state, best-so-far metrics and weights) and for the bank (optimiser,
learning-rate schedule, the batch order's and the other random number generators). The file is written atomically,
so a kill mid-write leaves the previous epoch's checkpoint intact. A
checkpoint that cannot be read, or was written for different settings, is
ignored with a warning and training starts over: it is never half-used.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import save_torch

FORMAT_VERSION = 5  # 3: torch.optim's optimiser and schedule states; 4: a best epoch per selection rule; 5: banks


def rng_states(generator: torch.Generator) -> dict[str, Any]:
    states = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def device_rng_state() -> dict[str, Any]:
    """torch's global random state (CPU, and CUDA where present): what a student's own steps draw from."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_device_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def restore_rng_states(states: dict[str, Any], generator: torch.Generator) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    generator.set_state(states["generator"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_resume(path: Path, fingerprint: str, epoch: int, state: dict[str, Any]) -> None:
    """Atomically write the state after ``epoch`` finished."""
    save_torch(path, {"format": FORMAT_VERSION, "fingerprint": fingerprint, "epoch": epoch, **state})


def load_resume(path: Path | None, fingerprint: str, log: logging.Logger) -> dict[str, Any] | None:
    """The saved state to continue from, or None (no file, unreadable, or other settings: start over)."""
    if path is None or not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
            raise ValueError("not a resume checkpoint of this version")
    except Exception as error:  # a truncated or corrupt file raises many kinds of errors
        log.warning("ignoring unreadable resume checkpoint %s (%s); starting from epoch 0", path, error)
        return None
    if payload.get("fingerprint") != fingerprint:
        log.warning("ignoring resume checkpoint %s: it was written for other settings; starting from epoch 0", path)
        return None
    return payload
