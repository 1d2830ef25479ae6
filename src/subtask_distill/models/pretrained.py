"""Pretrained teachers: torchvision's ImageNet weights, or a local checkpoint.

A pair's teacher config names its weights in exactly one of two ways:
- ``weights``: a torchvision weights enum, e.g. ``ResNet18_Weights.IMAGENET1K_V1``,
  read from torch.hub's cache (``$TORCH_HOME/hub/checkpoints``). Compute nodes
  may be offline, so loading never downloads unless asked to; ``prefetch``
  fills the cache on a node with internet.
- ``checkpoint``: a local file holding a state dict (plain, or under
  ``state_dict`` / ``model``, optionally with DataParallel's ``module.`` prefix).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from .registry import create_model

WEIGHT_SOURCES = ("weights", "checkpoint")
_SHOWN_KEYS = 5  # offending keys quoted in an error message
_PREFETCH_HINT = "snakemake --configfile configs/paper.yaml prefetch"


class TeacherWeightsError(RuntimeError):
    """A teacher's pretrained weights are missing, unreadable or do not fit its architecture."""


def weight_source(spec: Mapping[str, Any], pair: str) -> str:
    """Which of ``weights`` / ``checkpoint`` the teacher config sets (exactly one must be set)."""
    present = [key for key in WEIGHT_SOURCES if spec.get(key)]
    if len(present) != 1:
        keys = " or ".join(f"pairs.{pair}.teacher.{key}" for key in WEIGHT_SOURCES)
        found = "both are set" if len(present) == 2 else "neither is set"
        raise TeacherWeightsError(f"set exactly one of {keys} for a pretrained teacher; {found}")
    return present[0]


def torchvision_weights(name: str, pair: str, arch: str | None = None):
    """The torchvision weights enum member called ``name`` (e.g. "ResNet18_Weights.IMAGENET1K_V1").

    With ``arch`` (a torchvision builder name), also check the weights belong to that architecture.
    """
    from torchvision.models import get_weight

    try:
        weights = get_weight(name)
    except (ValueError, KeyError):
        raise TeacherWeightsError(
            f"pairs.{pair}.teacher.weights: {name!r} is not a torchvision weights name{_valid_names_hint(arch)}"
        ) from None
    valid = _weights_of(arch)
    if valid is not None and weights not in valid:
        raise TeacherWeightsError(
            f"pairs.{pair}.teacher.weights: {name!r} are not weights of {arch}{_valid_names_hint(arch)}"
        )
    return weights


def _weights_of(arch: str | None) -> list | None:
    """The torchvision weights of an architecture; None when torchvision does not know it (e.g. a student)."""
    from torchvision.models import get_model_weights

    if arch is None:
        return None
    try:
        return list(get_model_weights(arch))
    except ValueError:
        return None


def _valid_names_hint(arch: str | None) -> str:
    valid = _weights_of(arch)
    return f"; weights of {arch}: {', '.join(str(w) for w in valid)}" if valid else ""


def cached_weight_file(weights) -> Path:
    """Where torch.hub keeps the file of a torchvision weights enum (TORCH_HOME decides the folder)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def weight_file(spec: Mapping[str, Any], pair: str) -> Path:
    """The file a teacher's weights are read from: the hub cache entry or the local checkpoint."""
    if weight_source(spec, pair) == "weights":
        return cached_weight_file(torchvision_weights(spec["weights"], pair, spec.get("arch")))
    return Path(spec["checkpoint"])


def load_teacher_state(spec: Mapping[str, Any], pair: str, allow_download: bool = False) -> dict[str, Tensor]:
    """The teacher's state dict from its configured ``weights`` or ``checkpoint``."""
    if weight_source(spec, pair) == "weights":
        return _load_torchvision_state(spec, pair, allow_download)
    path = _existing_checkpoint(spec, pair)
    return _state_dict_of(_read(path), path)


def _load_torchvision_state(spec: Mapping[str, Any], pair: str, allow_download: bool) -> dict[str, Tensor]:
    weights = torchvision_weights(spec["weights"], pair, spec.get("arch"))
    path = cached_weight_file(weights)
    if not path.is_file():
        if not allow_download:
            raise TeacherWeightsError(_missing_weights_message(weights, path, pair))
        _download(weights.url, path)
    return _state_dict_of(_read(path), path)


def _missing_weights_message(weights, path: Path, pair: str) -> str:
    torch_home = os.environ.get("TORCH_HOME", "unset")
    return (
        f"pretrained weights {weights} of pair {pair} are not in the torch.hub cache: expected {path} "
        f"(TORCH_HOME={torch_home}). Compute nodes may be offline, so nothing is downloaded here: run the prefetch "
        f"target on a node with internet (`{_PREFETCH_HINT}`) with the same TORCH_HOME, copy {weights.url} to "
        f"that path, or set pairs.{pair}.teacher.checkpoint to a local file instead"
    )


def _existing_checkpoint(spec: Mapping[str, Any], pair: str) -> Path:
    path = Path(spec["checkpoint"])
    if not path.is_file():
        raise TeacherWeightsError(f"pairs.{pair}.teacher.checkpoint: teacher checkpoint {path} does not exist")
    return path


def _read(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load fails in many ways (unpickling, zip, EOF): all mean an unusable file
        raise TeacherWeightsError(f"cannot read teacher weights {path}: {type(error).__name__}: {error}") from error


def _state_dict_of(content: Any, path: Path) -> dict[str, Tensor]:
    """The state dict in a loaded file: plain or under "state_dict"/"model", without DataParallel's "module."."""
    for key in ("state_dict", "model"):  # the formats common training scripts write
        if isinstance(content, Mapping) and isinstance(content.get(key), Mapping):
            content = content[key]
            break
    if not isinstance(content, Mapping) or not content or not all(isinstance(v, Tensor) for v in content.values()):
        raise TeacherWeightsError(
            f"{path} holds no state dict: expected a mapping of parameter names to tensors, "
            "plain or under 'state_dict' or 'model'"
        )
    if all(key.startswith("module.") for key in content):
        return {key.removeprefix("module."): value for key, value in content.items()}
    return dict(content)


def load_pretrained_teacher(spec: Mapping[str, Any], pair: str, allow_download: bool = False) -> nn.Module:
    """The teacher architecture (from the model registry) holding its pretrained weights, in eval mode."""
    if "num_classes" not in spec:
        # The checkpoint is later rebuilt from the config; without num_classes it would get a subtask-sized head.
        raise TeacherWeightsError(f"pairs.{pair}.teacher.num_classes: a pretrained teacher needs its number of classes")
    model = create_model(spec["arch"], num_classes=spec["num_classes"], **spec.get("kwargs", {}))
    state = load_teacher_state(spec, pair, allow_download)
    _check_fits(model, state, weight_file(spec, pair), spec["arch"])
    model.load_state_dict(state, strict=True)
    return model.eval()


def _check_fits(model: nn.Module, state: Mapping[str, Tensor], source: Path, arch: str) -> None:
    expected = model.state_dict()
    problems = {
        "missing": [key for key in expected if key not in state],
        "unexpected": [key for key in state if key not in expected],
        "wrong shape": [
            f"{key} {tuple(state[key].shape)} vs {tuple(value.shape)}"
            for key, value in expected.items()
            if key in state and state[key].shape != value.shape
        ],
    }
    found = [f"{kind} ({len(keys)}): {', '.join(keys[:_SHOWN_KEYS])}" for kind, keys in problems.items() if keys]
    if found:
        raise TeacherWeightsError(f"weights in {source} do not fit the {arch} architecture; " + "; ".join(found))


def prefetch(spec: Mapping[str, Any], pair: str) -> Path | None:
    """Download a teacher's torchvision weights into the hub cache if missing; return the file (None for a checkpoint)."""
    if weight_source(spec, pair) == "checkpoint":
        _existing_checkpoint(spec, pair)
        return None
    weights = torchvision_weights(spec["weights"], pair, spec.get("arch"))
    path = cached_weight_file(weights)
    if not path.is_file():
        _download(weights.url, path)
    return path


def _download(url: str, path: Path) -> None:
    """Fetch url to path, checking the SHA-256 prefix that torchvision puts in its file names (as torch.hub does)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    match = re.search(torch.hub.HASH_REGEX, path.name)
    torch.hub.download_url_to_file(url, str(path), hash_prefix=match.group(1) if match else None, progress=False)
