"""Occlusion relevance on a 4x4 patch grid (the paper's Fig. 3).

R_p(x) = f(x) - f(x without patch p), with f the logit of the true class minus
the largest other subtask logit. Removing the digit patch (top-left) means
drawing a digit of a different class there, in the same look as the data's
digits; removing any other patch means filling it with the dataset's mean
colour. The 16 occluded copies of an image go through the model in one batch.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..data.digits import draw_digits

GRID = 4
DIGIT_PATCH = 0  # row-major index of the top-left patch


def margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """True-class logit minus the largest other logit."""
    true = logits.gather(1, labels.view(-1, 1)).squeeze(1)
    others = logits.scatter(1, labels.view(-1, 1), float("-inf"))
    return true - others.max(dim=1).values


def replacement_digit_class(digit: int, key: int, num_classes: int) -> int:
    """A digit class other than ``digit``, chosen by ``key`` (deterministic)."""
    return (digit + 1 + key % (num_classes - 1)) % num_classes


def occluded_copies(
    image: np.ndarray, clean: np.ndarray, mean_colour: np.ndarray, replacement_digit: np.ndarray | None, style: str
) -> np.ndarray:
    """The 16 copies of a uint8 HWC image, copy p with patch p removed.

    ``clean`` is the same image without any digit. With a ``replacement_digit``
    (intensities in [0, 1]), the digit patch of copy 0 becomes the clean corner
    with that digit drawn in the data's ``style``; without one (an image that
    carries no digit), the corner is filled with the mean colour like every
    other patch.
    """
    size = image.shape[0]
    patch = size // GRID
    copies = np.repeat(image[None], GRID * GRID, axis=0)
    fill = np.round(np.asarray(mean_colour) * 255.0).astype(np.uint8)
    for p in range(GRID * GRID):
        row, col = divmod(p, GRID)
        rows, cols = slice(row * patch, (row + 1) * patch), slice(col * patch, (col + 1) * patch)
        if p == DIGIT_PATCH and replacement_digit is not None:
            corner = clean[rows, cols].astype(np.float32)
            copies[p, rows, cols] = np.round(draw_digits(corner, replacement_digit, style)).astype(np.uint8)
        else:
            copies[p, rows, cols] = fill
    return copies


@torch.no_grad()
def occlusion_relevance(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: np.ndarray,
    clean: np.ndarray,
    labels: np.ndarray,
    digit_classes: np.ndarray,
    digit_pool: np.ndarray,
    digit_pool_labels: np.ndarray,
    mean_colour: np.ndarray,
    to_tensor: Callable[[np.ndarray], torch.Tensor],
    style: str,
) -> np.ndarray:
    """Relevance of each patch for each image: an N x 16 array.

    ``digit_classes`` gives each image's digit (-1 when it has none: then the
    corner is occluded like any other patch, with the mean colour).
    """
    num_classes = int(digit_pool_labels.max()) + 1
    by_class = [np.flatnonzero(digit_pool_labels == c) for c in range(num_classes)]
    out = np.empty((len(images), GRID * GRID), dtype=np.float32)
    for i, image in enumerate(images):
        digit, replacement = int(digit_classes[i]), None
        if digit >= 0:
            pool = by_class[replacement_digit_class(digit, i, num_classes)]
            replacement = digit_pool[pool[i % len(pool)]]
        copies = occluded_copies(image, clean[i], mean_colour, replacement, style)
        batch = to_tensor(np.concatenate([image[None], copies]))
        label = torch.full((len(batch),), int(labels[i]), dtype=torch.long)
        f = margin(model(batch).float(), label)
        out[i] = (f[0] - f[1:]).cpu().numpy()
    return out
