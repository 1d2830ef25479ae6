"""Start-up checks of an ImageNet study's dataset roots, run before any job is submitted.

The workflow calls these when it starts for real (not for a dry run, which
must work before the data is staged). Each problem names the config key to
set; reading every image happens later, in the manifest step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..artifacts import get_artifact
from .imagenet import SCAN_SPLITS, WADING_BIRDS
from .mnist import MNIST_FILES, find_mnist_files

_CLASS_NAMES = {bird.wnid: bird.name for bird in WADING_BIRDS}


def data_root_problems(data: dict[str, Any], need_imagenet: bool = True) -> list[str]:
    """What is wrong with ``data.imagenet_root`` and ``data.mnist_root`` (empty: nothing); MNIST only
    matters to an artifact drawn from its digits."""
    if data["kind"] != "imagenet":
        return []
    problems = _imagenet_problems(data) if need_imagenet else []
    if not get_artifact(data["artifact"]["kind"]).uses_digits:
        return problems
    mnist_root = data.get("mnist_root")
    if not mnist_root:
        problems.append("data.mnist_root: not set; set it to a folder for MNIST's four IDX files")
    elif not data.get("download_mnist"):
        missing = set(MNIST_FILES) - set(find_mnist_files(Path(mnist_root)))
        if missing:
            names = ", ".join(MNIST_FILES[key] for key in sorted(missing))
            problems.append(
                f"data.mnist_root: {mnist_root} lacks {names} (plain or .gz); copy them there, "
                "or set data.download_mnist: true and run the prefetch target on a node with internet"
            )
    return problems


def _imagenet_problems(data: dict[str, Any]) -> list[str]:
    root = data.get("imagenet_root")
    if not root:
        return ["data.imagenet_root: not set; set it to the ImageNet folder holding train/<wnid>/ and val/<wnid>/"]
    root = Path(root)
    if not root.is_dir():
        return [f"data.imagenet_root: {root} is not a folder"]
    missing = [
        f"{root / folder / wnid} ({_CLASS_NAMES.get(wnid, 'subtask class')})"
        for folder in SCAN_SPLITS.values()
        for wnid in data["wnids"]
        if not (root / folder / wnid).is_dir()
    ]
    if missing:
        return [
            "data.imagenet_root: missing class folders (validation images must be sorted into wnid folders, "
            "see docs/operations.md): " + ", ".join(missing)
        ]
    return []
