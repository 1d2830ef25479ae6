"""Which images carry the artifact, with which code, and which instance of it.

A class-coded artifact (the digit) carries the image's class on training
images and a class drawn uniformly over the subtask classes on validation
and test images. A single-class artifact (a watermark, compression) is put
only on images of its target class in training, and on images of every class
in validation and test; its code is always the target class. A validation
split built for ``selection: spurious`` follows the training rule instead
(``correlated``), as a practitioner's held-out data would.

Two ways to choose the contaminated images (``data.artifact.chosen_over``):

- ``pool``, as the authors' code draws them: ``int(rho * n)`` images of the
  whole training pool, chosen once by ``numpy.random.default_rng(1)`` before
  the pool is split into training and validation images, so the same images
  are contaminated for every seed; ``int(rho * n)`` of the test set likewise.
  The code of a validation or test image and the instance of every image
  come from ``default_rng(image index)``. (For a single-class artifact, the
  training images among them that show the target class.)
- ``split``: exactly ``round(rho * n)`` images of each split (of the split's
  target-class images, for a single-class artifact in training), chosen per
  split and seed. Every draw is a fixed function of (data seed, split, image
  id): per split, one keyed draw over the whole id space is indexed by id.

Either way the contaminated set at rho = 0.5 is contained in the one at
rho = 1, and a study run twice sees the same data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..artifacts import Artifact

SPLITS = ("train", "val", "test")
# The validation split of selection: spurious: the validation images, contaminated like the training images.
SPURIOUS_VAL = "val_spurious"
CHOSEN_OVER = ("pool", "split")
VALIDATION_SPLITS = ("random", "stratified")
_SPLIT_CODE = {split: code for code, split in enumerate(SPLITS)}
_SELECT, _CODE, _INSTANCE = 0, 1, 2
_AUTHORS_POOL_SEED = 1  # the seed of the authors' permutation of the pool
NO_ARTIFACT = -1


@dataclass(frozen=True)
class ContaminationPlan:
    """Per image of one split: the artifact's code and instance (NO_ARTIFACT if clean)."""

    code: np.ndarray
    instance: np.ndarray

    @property
    def contaminated(self) -> np.ndarray:
        return self.code != NO_ARTIFACT


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
    instance_labels: np.ndarray,
    num_classes: int,
    data_seed: int,
    target_class: int | None = None,
    correlated: bool | None = None,
) -> ContaminationPlan:
    """Decide the artifact of every image of a split.

    ``image_ids`` index the split's images in an id space of size ``id_space``
    (the training pool for train/val, the test set for test);
    ``instance_labels`` are the codes of the instances this split draws from.
    ``target_class`` is None for a class-coded artifact, else the class a
    single-class one marks. ``correlated`` (default: the training split only)
    ties the artifact to the image's class.
    """
    if split not in _SPLIT_CODE:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"rho must lie in [0, 1], got {rho}")
    correlated = split == "train" if correlated is None else correlated
    image_ids = np.asarray(image_ids, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    codes = range(num_classes) if target_class is None else [target_class]
    pools = {c: np.flatnonzero(np.asarray(instance_labels) == c) for c in codes}
    for c, pool in pools.items():
        if len(pool) == 0:
            raise ValueError(f"the artifact's instances for split {split!r} have none of class {c}")
    rule = (split, rho, image_ids, labels, id_space, pools, num_classes, target_class, correlated)
    if chosen_over == "pool":
        return _plan_over_pool(*rule)
    if chosen_over == "split":
        return _plan_per_split(*rule, data_seed)
    raise ValueError(f"unknown chosen_over {chosen_over!r}; expected one of {CHOSEN_OVER}")


def _plan_over_pool(split, rho, image_ids, labels, id_space, pools, num_classes, target_class, correlated) -> ContaminationPlan:
    """The authors' draws: which images from one permutation of the id space, the rest per image index."""
    chosen = np.random.default_rng(_AUTHORS_POOL_SEED).permutation(id_space)[: int(id_space * rho)]
    rows = np.flatnonzero(np.isin(image_ids, chosen))
    if target_class is not None and correlated:
        rows = rows[labels[rows] == target_class]
    code = np.full(len(image_ids), NO_ARTIFACT, dtype=np.int64)
    instance = np.full(len(image_ids), NO_ARTIFACT, dtype=np.int64)
    for row in rows:
        index = int(image_ids[row])
        if target_class is not None:
            wanted = target_class
        elif correlated:
            wanted = int(labels[row])
        else:
            wanted = int(np.random.default_rng(index).permutation(num_classes)[0])
        code[row] = wanted
        instance[row] = np.random.default_rng(index).choice(pools[wanted])
    return ContaminationPlan(code=code, instance=instance)


def _plan_per_split(
    split, rho, image_ids, labels, id_space, pools, num_classes, target_class, correlated, data_seed
) -> ContaminationPlan:
    """Exactly round(rho * n) images of this split (of its target-class images, single-class in training),
    every draw keyed by (data seed, split, image id)."""
    priority = _keyed(data_seed, split, _SELECT).random(id_space)[image_ids]
    candidates = np.arange(len(image_ids))
    if target_class is not None and correlated:
        candidates = candidates[labels == target_class]
    order = candidates[np.argsort(priority[candidates], kind="stable")]
    chosen = order[: contaminated_count(rho, len(candidates))]
    if target_class is not None:
        wanted = np.full(len(image_ids), target_class, dtype=np.int64)
    elif correlated:
        wanted = labels
    else:
        wanted = _keyed(data_seed, split, _CODE).integers(0, num_classes, id_space)[image_ids]
    pick = _keyed(data_seed, split, _INSTANCE).integers(0, 2**62, id_space)[image_ids]
    code = np.full(len(image_ids), NO_ARTIFACT, dtype=np.int64)
    instance = np.full(len(image_ids), NO_ARTIFACT, dtype=np.int64)
    for i in chosen:
        pool = pools[int(wanted[i])]
        code[i] = wanted[i]
        instance[i] = pool[pick[i] % len(pool)]
    return ContaminationPlan(code=code, instance=instance)


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


def apply_artifact(images: np.ndarray, plan: ContaminationPlan, artifact: Artifact, pool: str) -> np.ndarray:
    """A copy of uint8 NHWC ``images`` with each contaminated image's artifact drawn in, from instance ``pool``."""
    out = images.copy()
    for row in np.flatnonzero(plan.contaminated):
        out[row] = artifact.draw(out[row], int(plan.code[row]), int(plan.instance[row]), pool)
    return out


def artifact_target(artifact: Artifact) -> int | None:
    """What plan_contamination's ``target_class`` is for ``artifact``: None when class-coded."""
    return None if artifact.class_coded else artifact.target_class


# The splits a study's data holds: the training split, the oracle and the spurious validation splits, the test split.
EVALUATED_SPLITS = ("train", "val", SPURIOUS_VAL, "test")


@dataclass(frozen=True)
class SplitPlan:
    """One split of one (rho, seed): its images (``ids`` into the pool or the test set), labels and artifacts."""

    source: str  # "pool" or "test"
    ids: np.ndarray
    labels: np.ndarray
    plan: ContaminationPlan
    pool: str  # the artifact's instance pool


def plan_splits(
    artifact: Artifact, data_cfg: dict, pool_labels: np.ndarray, test_labels: np.ndarray, rho: float, seed: int
) -> dict[str, SplitPlan]:
    """Every split of ``EVALUATED_SPLITS`` at (rho, seed): the seed's train/validation split of the pool, then
    each split's artifacts. The spurious validation split holds the validation images, contaminated by the
    training split's rule."""
    pool_labels, test_labels = np.asarray(pool_labels), np.asarray(test_labels)
    train_ids, val_ids = validation_split(
        pool_labels, data_cfg["validation_fraction"], seed, data_cfg["seed"], data_cfg["validation_split"]
    )
    layout = {  # split: (source, ids, the split it is planned as, tied to the class)
        "train": ("pool", train_ids, "train", True),
        "val": ("pool", val_ids, "val", False),
        SPURIOUS_VAL: ("pool", val_ids, "val", True),
        "test": ("test", np.arange(len(test_labels)), "test", False),
    }
    out = {}
    for split, (source, ids, planned_as, correlated) in layout.items():
        labels = (pool_labels if source == "pool" else test_labels)[ids]
        pool = artifact.pool_of(planned_as)
        plan = plan_contamination(
            chosen_over=data_cfg["artifact"]["chosen_over"],
            split=planned_as,
            rho=rho,
            image_ids=ids,
            labels=labels,
            id_space=len(pool_labels if source == "pool" else test_labels),
            instance_labels=artifact.instance_labels(pool),
            num_classes=artifact.num_classes,
            data_seed=data_cfg["seed"],
            target_class=artifact_target(artifact),
            correlated=correlated,
        )
        out[split] = SplitPlan(source, ids, labels, plan, pool)
    return out
