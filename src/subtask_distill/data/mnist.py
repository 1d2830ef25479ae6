"""MNIST digits for the paper-scale study, read straight from the IDX files.

MNIST ships as four IDX files (http://yann.lecun.com/exdb/mnist/): a header of
a magic number (two zero bytes, a dtype code, the number of dimensions) and
one big-endian uint32 size per dimension, followed by the raw data. They are
accepted plain or gzipped, directly in the configured folder or in the
``MNIST/raw`` subfolder that torchvision's downloader writes.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_UBYTE = 0x08  # the IDX dtype code of unsigned bytes, the only one MNIST uses
_HEADER = 4  # bytes of the magic number


def load_mnist(root: Path, download: bool = False) -> dict[str, np.ndarray]:
    """The four MNIST arrays: train_images/test_images (uint8 N x 28 x 28), train_labels/test_labels (int64).

    With ``download``, missing files are fetched with torchvision into ``root/MNIST/raw``.
    """
    root = Path(root)
    found = find_mnist_files(root)
    if len(found) < len(MNIST_FILES) and download:
        _download_with_torchvision(root)
        found = find_mnist_files(root)
    missing = [name for key, name in MNIST_FILES.items() if key not in found]
    if missing:
        raise FileNotFoundError(
            f"MNIST files missing in {root} (also looked in {root / 'MNIST' / 'raw'}): {', '.join(missing)} "
            "(plain or .gz). Set data.mnist_root to the folder holding them, "
            "or set data.download_mnist: true to download them with torchvision."
        )
    arrays = {key: read_idx(path) for key, path in found.items()}
    for split in ("train", "test"):
        _check_pair(
            found[f"{split}_images"], arrays[f"{split}_images"], found[f"{split}_labels"], arrays[f"{split}_labels"]
        )
        arrays[f"{split}_labels"] = arrays[f"{split}_labels"].astype(np.int64)
    return arrays


def find_mnist_files(root: Path) -> dict[str, Path]:
    """Key -> path of each MNIST file present, trying root before root/MNIST/raw and plain before .gz."""
    found = {}
    for key, name in MNIST_FILES.items():
        candidates = [folder / f"{name}{suffix}" for folder in (root, root / "MNIST" / "raw") for suffix in ("", ".gz")]
        existing = [path for path in candidates if path.is_file()]
        if existing:
            found[key] = existing[0]
    return found


def _download_with_torchvision(root: Path) -> None:
    from torchvision.datasets import MNIST  # lazily: only a download needs torchvision's dataset code

    for train in (True, False):
        MNIST(str(root), train=train, download=True)


def _check_pair(images_path: Path, images: np.ndarray, labels_path: Path, labels: np.ndarray) -> None:
    if images.ndim != 3:
        raise ValueError(f"{images_path} holds a {images.ndim}-d array; MNIST images are 3-d (N x 28 x 28)")
    if labels.ndim != 1:
        raise ValueError(f"{labels_path} holds a {labels.ndim}-d array; MNIST labels are 1-d")
    if len(images) != len(labels):
        raise ValueError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")


def read_idx(path: Path) -> np.ndarray:
    """A uint8 IDX file (plain, or gzipped when the name ends with .gz) as an array; ValueError names a bad file."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as error:  # a corrupt or truncated gzip stream
        raise ValueError(f"cannot decompress {path}: {error}") from error
    if len(raw) < _HEADER or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file: its magic number does not start with two zero bytes")
    if raw[2] != _UBYTE:
        raise ValueError(f"{path} has IDX dtype code {raw[2]:#04x}; only unsigned bytes ({_UBYTE:#04x}) are supported")
    ndim = raw[3]
    data_start = _HEADER + 4 * ndim
    if len(raw) < data_start:
        raise ValueError(f"{path} is truncated: its header promises {ndim} dimension sizes")
    shape = tuple(int(size) for size in np.frombuffer(raw, dtype=">u4", count=ndim, offset=_HEADER))
    expected = data_start + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise ValueError(f"{path} is {state}: shape {shape} needs {expected} bytes, the file has {len(raw)}")
    return np.frombuffer(raw, dtype=np.uint8, offset=data_start).reshape(shape).copy()


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file, gzipped when the name ends with .gz.

    The reverse of read_idx; tests use it to fabricate MNIST files.
    """
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _UBYTE, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.tobytes()
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
