"""Provenance recorded beside every result: config, versions, git commit, the machine."""

from __future__ import annotations

import datetime as dt
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from .config import config_hash

_PACKAGES = ("subtask-distill", "torch", "torchvision", "timm", "numpy", "scipy", "scikit-learn", "snakemake")
_REPO = Path(__file__).resolve().parents[2]


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(repo: Path = _REPO) -> dict[str, Any]:
    """The checkout's commit and whether it had uncommitted changes (None outside git)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def cpu_model() -> str:
    """The CPU's model name (Linux), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: Any = None) -> dict[str, Any]:
    """What numbers depend on beyond config and seed: the CPU (its kernels), torch's threads and build, the GPU."""
    import torch

    info = {
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # which vectorised kernels torch runs
        "cuda": torch.version.cuda,
    }
    if device is not None:
        info["device"] = str(device)
        if torch.device(device).type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(device)
    return info


def provenance(config: dict[str, Any], device: Any = None) -> dict[str, Any]:
    return {
        "config": config,
        "config_sha256": config_hash(config),
        "versions": package_versions(),
        "git": git_state(),
        "host": socket.gethostname(),
        "machine": machine(device),
        "command": sys.argv,
        "finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
