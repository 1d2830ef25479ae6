"""Occlusion relevance on a 4x4 patch grid (the paper's Fig. 3), and of the artifact itself.

R_p(x) = f(x) - f(x without patch p), with f the logit of the true class minus
the largest other subtask logit. Removing a patch means filling it with the
dataset's mean colour, except the patch that holds an image's whole artifact
(the digit's top-left patch): there the artifact is removed instead (the
artifact registry's ``remove``: for the digit, a digit of another class drawn
into the clean corner). R_artifact(x) = f(x) - f(x without its artifact)
measures the artifact alone: it is R_p of the artifact's patch when the
artifact fits one, else one more forward pass (a watermark across patches,
compression over the whole image). The occluded copies of an image go through
the model in one batch.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..artifacts import GRID, Artifact

NO_PATCH = -1


def margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """True-class logit minus the largest other logit."""
    true = logits.gather(1, labels.view(-1, 1)).squeeze(1)
    others = logits.scatter(1, labels.view(-1, 1), float("-inf"))
    return true - others.max(dim=1).values


def occluded_copies(image: np.ndarray, mean_colour: np.ndarray, removed: np.ndarray | None, artifact_patch: int) -> np.ndarray:
    """The 16 copies of a uint8 HWC image, copy p with patch p removed.

    ``removed`` is the image without its artifact (None when it carries
    none); copy ``artifact_patch`` is that image when the artifact fits the
    patch, every other patch is filled with the mean colour.
    """
    size = image.shape[0]
    patch = size // GRID
    copies = np.repeat(image[None], GRID * GRID, axis=0)
    fill = np.round(np.asarray(mean_colour) * 255.0).astype(np.uint8)
    for p in range(GRID * GRID):
        row, col = divmod(p, GRID)
        rows, cols = slice(row * patch, (row + 1) * patch), slice(col * patch, (col + 1) * patch)
        if p == artifact_patch and removed is not None:
            copies[p] = removed
        else:
            copies[p, rows, cols] = fill
    return copies


@torch.no_grad()
def occlusion_relevance(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: np.ndarray,
    clean: np.ndarray,
    labels: np.ndarray,
    codes: np.ndarray,
    instances: np.ndarray,
    artifact: Artifact,
    pool: str,
    mean_colour: np.ndarray,
    to_tensor: Callable[[np.ndarray], torch.Tensor],
) -> dict[str, np.ndarray]:
    """Per image: ``relevance`` of each patch (N x 16), ``artifact_relevance`` (NaN for a clean image) and
    ``artifact_patch``, the patch that holds its whole artifact (NO_PATCH when none does).

    ``codes`` and ``instances`` give each image's artifact (code -1 when it
    has none); ``pool`` is the instance pool the images' artifacts come from.
    """
    relevance = np.empty((len(images), GRID * GRID), dtype=np.float32)
    artifact_relevance = np.full(len(images), np.nan, dtype=np.float32)
    artifact_patch = np.full(len(images), NO_PATCH, dtype=np.int64)
    for i, image in enumerate(images):
        code, instance, removed = int(codes[i]), int(instances[i]), None
        if code >= 0:
            removed = artifact.remove(image, clean[i], code, instance, i, pool)
            artifact_patch[i] = NO_PATCH if (patch := artifact.grid_patch(instance)) is None else patch
        copies = occluded_copies(image, mean_colour, removed, int(artifact_patch[i]))
        if removed is not None and artifact_patch[i] == NO_PATCH:
            copies = np.concatenate([copies, removed[None]])
        batch = to_tensor(np.concatenate([image[None], copies]))
        label = torch.full((len(batch),), int(labels[i]), dtype=torch.long)
        f = margin(model(batch).float(), label)
        drops = (f[0] - f[1:]).cpu().numpy()
        relevance[i] = drops[: GRID * GRID]
        if removed is not None:
            artifact_relevance[i] = drops[artifact_patch[i]] if artifact_patch[i] != NO_PATCH else drops[-1]
    return {"relevance": relevance, "artifact_relevance": artifact_relevance, "artifact_patch": artifact_patch}
