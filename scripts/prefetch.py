#!/usr/bin/env python
"""Download what a study needs from the internet, ahead of jobs on offline compute nodes.

Fetches the torchvision weights of every pair whose teacher sets ``weights``
into the torch.hub cache ($TORCH_HOME/hub/checkpoints), and MNIST into
data.mnist_root when data.download_mnist is true. Run it on a node with internet.
"""

from pathlib import Path
from typing import Any

import torch

from subtask_distill import cli
from subtask_distill.data.mnist import MNIST_FILES, load_mnist
from subtask_distill.io import write_json
from subtask_distill.models.pretrained import prefetch


def main() -> None:
    p = cli.parser(__doc__)
    p.add_argument("--out", type=Path, help="optional output JSON listing the fetched files and their sizes")
    args = p.parse_args()
    config, log = cli.setup(args, "prefetch")

    files: list[dict[str, Any]] = []
    for pair, spec in config.get("pairs", {}).items():
        if not spec["teacher"].get("weights"):
            continue
        path = prefetch(spec["teacher"], pair)
        log.info("pair %s: teacher weights %s in %s", pair, spec["teacher"]["weights"], path)
        files.append(_entry(f"pairs.{pair}.teacher.weights", path))

    data = config.get("data", {})
    if data.get("download_mnist") and data.get("mnist_root"):
        root = Path(data["mnist_root"])
        load_mnist(root, download=True)  # also checks the files read back as MNIST
        for path in _mnist_files(root):
            log.info("MNIST file %s", path)
            files.append(_entry("data.mnist_root", path))

    if not files:
        log.info("nothing to fetch: no teacher sets weights and data.download_mnist is off")
    if args.out is not None:
        write_json(args.out, {"torch_hub_dir": torch.hub.get_dir(), "files": files})
        log.info("wrote %s", args.out)


def _entry(key: str, path: Path) -> dict[str, Any]:
    return {"config_key": key, "path": str(path), "bytes": path.stat().st_size}


def _mnist_files(root: Path) -> list[Path]:
    """The MNIST files (plain or gzipped) in root or in torchvision's root/MNIST/raw."""
    folders = (root, root / "MNIST" / "raw")
    return sorted(path for folder in folders for name in MNIST_FILES.values() for path in folder.glob(f"{name}*"))


if __name__ == "__main__":
    main()
