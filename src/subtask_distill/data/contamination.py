"""Which images carry a digit, which digit class, and which digit instance.

DESIGN section 2: in each split exactly round(rho * n) images carry a digit.
On the training split the digit's class equals the image's class; on the
validation and test splits it is uniform over the subtask classes.

Every random choice is a fixed function of (data seed, split, image id): per
split, one keyed draw is made over the whole id space and indexed by id. So
the same image in the same split always gets the same digit, the contaminated
set at rho = 0.5 is contained in the one at rho = 1, and a study run twice
sees the same data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPLITS = ("train", "val", "test")
_SPLIT_CODE = {split: code for code, split in enumerate(SPLITS)}
_SELECT, _DIGIT_CLASS, _DIGIT_INSTANCE = 0, 1, 2
NO_DIGIT = -1


@dataclass(frozen=True)
class ContaminationPlan:
    """Per image of one split: digit class and digit instance (NO_DIGIT if clean)."""

    digit_class: np.ndarray
    digit_index: np.ndarray

    @property
    def contaminated(self) -> np.ndarray:
        return self.digit_class != NO_DIGIT


def contaminated_count(rho: float, n: int) -> int:
    """round(rho * n) with halves rounded up (Python's round() rounds to even)."""
    return int(np.floor(rho * n + 0.5))


def _keyed(data_seed: int, split: str, stream: int) -> np.random.Generator:
    return np.random.default_rng([data_seed, _SPLIT_CODE[split], stream])


def plan_contamination(
    *,
    split: str,
    rho: float,
    image_ids: np.ndarray,
    labels: np.ndarray,
    id_space: int,
    digit_labels: np.ndarray,
    num_classes: int,
    data_seed: int,
) -> ContaminationPlan:
    """Decide the digit of every image of a split.

    ``image_ids`` index the split's images in an id space of size ``id_space``
    (the training pool for train/val, the test set for test); ``digit_labels``
    are the labels of the digit pool this split draws from.
    """
    if split not in _SPLIT_CODE:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"rho must lie in [0, 1], got {rho}")
    image_ids = np.asarray(image_ids, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)

    priority = _keyed(data_seed, split, _SELECT).random(id_space)[image_ids]
    chosen = np.argsort(priority, kind="stable")[: contaminated_count(rho, len(image_ids))]

    if split == "train":
        wanted = labels
    else:
        wanted = _keyed(data_seed, split, _DIGIT_CLASS).integers(0, num_classes, id_space)[image_ids]
    pick = _keyed(data_seed, split, _DIGIT_INSTANCE).integers(0, 2**62, id_space)[image_ids]

    pools = [np.flatnonzero(digit_labels == c) for c in range(num_classes)]
    for c, pool in enumerate(pools):
        if len(pool) == 0:
            raise ValueError(f"the digit pool for split {split!r} has no digit of class {c}")

    digit_class = np.full(len(image_ids), NO_DIGIT, dtype=np.int64)
    digit_index = np.full(len(image_ids), NO_DIGIT, dtype=np.int64)
    for i in chosen:
        pool = pools[wanted[i]]
        digit_class[i] = wanted[i]
        digit_index[i] = pool[pick[i] % len(pool)]
    return ContaminationPlan(digit_class=digit_class, digit_index=digit_index)


def validation_split(labels: np.ndarray, fraction: float, seed: int, data_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of the training pool: (train ids, validation ids).

    Depends on the run seed, so each seed validates on a different 20%.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng([data_seed, seed, 7919])
    train, val = [], []
    for c in np.unique(labels):
        ids = rng.permutation(np.flatnonzero(labels == c))
        n_val = contaminated_count(fraction, len(ids))
        val.append(ids[:n_val])
        train.append(ids[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def paste_digits(images: np.ndarray, plan: ContaminationPlan, digits: np.ndarray) -> np.ndarray:
    """Blend white digit strokes into the top-left corner of uint8 NHWC images.

    ``digits`` holds the digit pool as intensities in [0, 1] of shape (M, h, w),
    already at the size of the corner patch; the intensity is the alpha of white.
    """
    out = images.copy()
    rows = np.flatnonzero(plan.contaminated)
    if len(rows) == 0:
        return out
    h, w = digits.shape[1:]
    alpha = digits[plan.digit_index[rows]][..., None]
    corner = out[rows, :h, :w].astype(np.float32)
    out[rows, :h, :w] = np.round(corner * (1 - alpha) + 255.0 * alpha).astype(np.uint8)
    return out
