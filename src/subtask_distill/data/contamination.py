"""Which images carry a digit, which digit class, and which digit instance.

On the training split the digit's class equals the image's class; on the
validation and test splits it is uniform over the subtask classes. Two ways to
choose the contaminated images (``data.digit.chosen_over``):

- ``pool``, as the authors' code draws them: ``int(rho * n)`` images of the
  whole training pool, chosen once by ``numpy.random.default_rng(1)`` before
  the pool is split into training and validation images, so the same images
  are contaminated for every seed; ``int(rho * n)`` of the test set likewise.
  The digit class of a validation or test image and the digit instance of
  every image come from ``default_rng(image index)``.
- ``split``: exactly ``round(rho * n)`` images of each split, chosen per split
  and seed. Every draw is a fixed function of (data seed, split, image id):
  per split, one keyed draw over the whole id space is indexed by id.

Either way the contaminated set at rho = 0.5 is contained in the one at
rho = 1, and a study run twice sees the same data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .digits import draw_digits

SPLITS = ("train", "val", "test")
CHOSEN_OVER = ("pool", "split")
VALIDATION_SPLITS = ("random", "stratified")
_SPLIT_CODE = {split: code for code, split in enumerate(SPLITS)}
_SELECT, _DIGIT_CLASS, _DIGIT_INSTANCE = 0, 1, 2
_AUTHORS_POOL_SEED = 1  # the seed of the authors' permutation of the pool
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
    chosen_over: str,
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
    pools = [np.flatnonzero(np.asarray(digit_labels) == c) for c in range(num_classes)]
    for c, pool in enumerate(pools):
        if len(pool) == 0:
            raise ValueError(f"the digit pool for split {split!r} has no digit of class {c}")
    if chosen_over == "pool":
        return _plan_over_pool(split, rho, image_ids, labels, id_space, pools)
    if chosen_over == "split":
        return _plan_per_split(split, rho, image_ids, labels, id_space, pools, data_seed)
    raise ValueError(f"unknown chosen_over {chosen_over!r}; expected one of {CHOSEN_OVER}")


def _plan_over_pool(split, rho, image_ids, labels, id_space, pools) -> ContaminationPlan:
    """The authors' draws: which images from one permutation of the id space, the rest per image index."""
    chosen = np.random.default_rng(_AUTHORS_POOL_SEED).permutation(id_space)[: int(id_space * rho)]
    digit_class = np.full(len(image_ids), NO_DIGIT, dtype=np.int64)
    digit_index = np.full(len(image_ids), NO_DIGIT, dtype=np.int64)
    for row in np.flatnonzero(np.isin(image_ids, chosen)):
        index = int(image_ids[row])
        if split == "train":
            wanted = int(labels[row])
        else:
            wanted = int(np.random.default_rng(index).permutation(len(pools))[0])
        digit_class[row] = wanted
        digit_index[row] = np.random.default_rng(index).choice(pools[wanted])
    return ContaminationPlan(digit_class=digit_class, digit_index=digit_index)


def _plan_per_split(split, rho, image_ids, labels, id_space, pools, data_seed) -> ContaminationPlan:
    """Exactly round(rho * n) images of this split, every draw keyed by (data seed, split, image id)."""
    priority = _keyed(data_seed, split, _SELECT).random(id_space)[image_ids]
    chosen = np.argsort(priority, kind="stable")[: contaminated_count(rho, len(image_ids))]
    if split == "train":
        wanted = labels
    else:
        wanted = _keyed(data_seed, split, _DIGIT_CLASS).integers(0, len(pools), id_space)[image_ids]
    pick = _keyed(data_seed, split, _DIGIT_INSTANCE).integers(0, 2**62, id_space)[image_ids]
    digit_class = np.full(len(image_ids), NO_DIGIT, dtype=np.int64)
    digit_index = np.full(len(image_ids), NO_DIGIT, dtype=np.int64)
    for i in chosen:
        pool = pools[wanted[i]]
        digit_class[i] = wanted[i]
        digit_index[i] = pool[pick[i] % len(pool)]
    return ContaminationPlan(digit_class=digit_class, digit_index=digit_index)


def validation_split(
    labels: np.ndarray, fraction: float, seed: int, data_seed: int, how: str = "stratified"
) -> tuple[np.ndarray, np.ndarray]:
    """Split the training pool into (train ids, validation ids), sorted; each seed validates on another part.

    ``random``: torch's ``random_split`` of the pool with a generator seeded by
    the run seed, as the authors' code does (the same ids as theirs for the
    same pool order and seed). ``stratified``: ``fraction`` of each class.
    """
    labels = np.asarray(labels)
    if how == "random":
        # The authors' shares are [0.8, 1 - 0.8, 0.0]; the empty third part changes no index.
        train_share = 1 - fraction
        parts = torch.utils.data.random_split(
            range(len(labels)), [train_share, 1 - train_share], torch.Generator().manual_seed(seed)
        )
        train, val = (np.sort(np.asarray(part.indices, dtype=np.int64)) for part in parts)
        return train, val
    if how != "stratified":
        raise ValueError(f"unknown validation split {how!r}; expected one of {VALIDATION_SPLITS}")
    rng = np.random.default_rng([data_seed, seed, 7919])
    train, val = [], []
    for c in np.unique(labels):
        ids = rng.permutation(np.flatnonzero(labels == c))
        n_val = contaminated_count(fraction, len(ids))
        val.append(ids[:n_val])
        train.append(ids[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def paste_digits(images: np.ndarray, plan: ContaminationPlan, digits: np.ndarray, style: str) -> np.ndarray:
    """Draw each contaminated image's digit into its top-left corner (uint8 NHWC images).

    ``digits`` holds the digit pool as intensities in [0, 1] of shape (M, h, w),
    already at the size of the corner patch; ``style`` is the digit's look.
    """
    out = images.copy()
    rows = np.flatnonzero(plan.contaminated)
    if len(rows) == 0:
        return out
    h, w = digits.shape[1:]
    corner = out[rows, :h, :w].astype(np.float32)
    out[rows, :h, :w] = np.round(draw_digits(corner, digits[plan.digit_index[rows]], style)).astype(np.uint8)
    return out
