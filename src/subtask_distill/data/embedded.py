"""The embedded study's data: texture images plus scikit-learn's digits.

Two files are synthesised once per study:
- the teacher set: clean images of all texture classes (the teacher's
  "ImageNet"), with a held-out test part;
- the subtask base: the clean training pool and test set of the subtask
  classes, the two halves of the digit pool, and the channel statistics.
The contaminated splits for one (rho, seed) are then derived from the base.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..artifacts import build_artifact
from .contamination import apply_artifact, artifact_target, plan_contamination, plan_splits
from .textures import NUM_CLASSES, TextureStyle, render_textures

_TEACHER_TRAIN, _TEACHER_TEST, _POOL, _TEST = range(4)


def load_digit_halves(num_classes: int, patch: int) -> dict[str, np.ndarray]:
    """scikit-learn's bundled 8x8 digits of classes < num_classes, split in two pools.

    The first half of the file (in its original order, which groups writers)
    is the "train" pool, MNIST's training images at paper scale; the second
    half is the "test" pool, mostly of writers the first half lacks, as MNIST's
    test set. Intensities are scaled to [0, 1].
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0
    if images.shape[1] != patch:
        raise ValueError(f"data.image_size must be 4 x 8 = 32 for the embedded digits, patch is {patch}")
    half = len(images) // 2
    out = {}
    for name, part in (("train", slice(0, half)), ("test", slice(half, None))):
        keep = bunch.target[part] < num_classes
        out[f"digits_{name}"] = images[part][keep]
        out[f"digits_{name}_y"] = bunch.target[part][keep].astype(np.int64)
    return out


def synthesize(data_cfg: dict[str, Any], workers: int = 1) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Return (teacher set, subtask base) as dicts of arrays, rendered on ``workers`` threads (same result)."""
    seed, size = data_cfg["seed"], data_cfg["image_size"]
    style = TextureStyle(**{k: tuple(v) if isinstance(v, list) else v for k, v in data_cfg.get("texture", {}).items()})
    subtask_classes = np.asarray(data_cfg["subtask_classes"], dtype=np.int64)
    if subtask_classes.max() >= NUM_CLASSES:
        raise ValueError(f"data.subtask_classes must be texture classes below {NUM_CLASSES}")

    def images(per_class: int, classes: np.ndarray, stream: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.repeat(classes, per_class)
        return render_textures(labels, seed=seed, stream=stream, size=size, style=style, workers=workers), labels

    all_classes = np.arange(NUM_CLASSES)
    teacher_train_x, teacher_train_y = images(data_cfg["teacher_train_per_class"], all_classes, _TEACHER_TRAIN)
    teacher_test_x, teacher_test_y = images(data_cfg["teacher_test_per_class"], all_classes, _TEACHER_TEST)
    teacher_set = {
        "train_x": teacher_train_x,
        "train_y": teacher_train_y,
        "test_x": teacher_test_x,
        "test_y": teacher_test_y,
    }

    pool_x, pool_classes = images(data_cfg["pool_per_class"], subtask_classes, _POOL)
    test_x, test_classes = images(data_cfg["test_per_class"], subtask_classes, _TEST)
    to_subtask = {int(c): k for k, c in enumerate(subtask_classes)}
    pixels = teacher_train_x.reshape(-1, 3).astype(np.float64) / 255.0
    base = {
        "pool_x": pool_x,
        "pool_y": np.array([to_subtask[int(c)] for c in pool_classes], dtype=np.int64),
        "test_x": test_x,
        "test_y": np.array([to_subtask[int(c)] for c in test_classes], dtype=np.int64),
        "channel_mean": pixels.mean(axis=0).astype(np.float32),
        "channel_std": pixels.std(axis=0).astype(np.float32),
        **load_digit_halves(len(subtask_classes), patch=size // 4),
    }
    return teacher_set, base


def digit_pools(base: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The digit artifact's instance pools from the subtask base (intensities at the patch size)."""
    return {name: (base[f"digits_{name}"], base[f"digits_{name}_y"]) for name in ("train", "test")}


def build_splits(base: dict[str, np.ndarray], data_cfg: dict[str, Any], rho: float, seed: int) -> dict[str, np.ndarray]:
    """Contaminated splits (``EVALUATED_SPLITS``) for one (rho, seed).

    Keys per split s: s_x (uint8 NHWC), s_y, s_artifact (its code, -1 when
    clean), s_instance (into the split's instance pool: for the digit, the
    "train" digits for train/val, ``test_pool``'s for test), s_id (image id).
    """
    artifact = build_artifact(data_cfg, digit_pools(base))
    plans = plan_splits(artifact, data_cfg, base["pool_y"], base["test_y"], rho, seed)
    out = {"channel_mean": base["channel_mean"], "channel_std": base["channel_std"]}
    for split, planned in plans.items():
        images = base[f"{planned.source}_x"][planned.ids]
        out[f"{split}_x"] = apply_artifact(images, planned.plan, artifact, planned.pool)
        out[f"{split}_y"] = planned.labels
        out[f"{split}_artifact"] = planned.plan.code
        out[f"{split}_instance"] = planned.plan.instance
        out[f"{split}_id"] = planned.ids
    return out


def biased_teacher_images(
    teacher_set: dict[str, np.ndarray], base: dict[str, np.ndarray], data_cfg: dict[str, Any], rho: float
) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's training images with the artifact tied to the class (``teacher_training.artifact_rho``).

    A share ``rho`` of the images of the subtask classes carries the artifact
    by the training rule (a class-coded artifact names the image's subtask
    class; a single-class one marks the target class), exactly round(rho * n)
    of them; the other classes stay clean. Returns the images and each one's
    artifact code (-1 when clean).
    """
    artifact = build_artifact(data_cfg, digit_pools(base))
    subtask_of = {int(c): k for k, c in enumerate(data_cfg["subtask_classes"])}
    rows = np.flatnonzero(np.isin(teacher_set["train_y"], list(subtask_of)))
    labels = np.array([subtask_of[int(c)] for c in teacher_set["train_y"][rows]], dtype=np.int64)
    plan = plan_contamination(
        chosen_over="split",
        split="train",
        rho=rho,
        image_ids=np.arange(len(rows)),
        labels=labels,
        id_space=len(rows),
        instance_labels=artifact.instance_labels("train"),
        num_classes=artifact.num_classes,
        data_seed=data_cfg["seed"],
        target_class=artifact_target(artifact),
    )
    images = teacher_set["train_x"].copy()
    images[rows] = apply_artifact(images[rows], plan, artifact, "train")
    codes = np.full(len(images), -1, dtype=np.int64)
    codes[rows] = plan.code
    return images, codes
