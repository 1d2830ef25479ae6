"""A picture of the data: contaminated training and test images per rho."""

from __future__ import annotations

import numpy as np


def preview_figure(splits_by_rho: dict[str, dict[str, np.ndarray]], description: str, per_class: int = 2):
    """One row of training and one of test images per rho; titles give the class and the artifact's code
    (- when clean); ``description`` says what the artifact is."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(rho, split) for rho in splits_by_rho for split in ("train", "test")]
    num_classes = int(max(arrays["test_y"].max() for arrays in splits_by_rho.values())) + 1
    cols = num_classes * per_class
    fig, axes = plt.subplots(len(rows), cols, figsize=(cols * 0.9, len(rows) * 1.1), squeeze=False)
    for row, (rho, split) in enumerate(rows):
        arrays = splits_by_rho[rho]
        labels, codes = arrays[f"{split}_y"], arrays[f"{split}_artifact"]
        for cls in range(num_classes):
            # Prefer contaminated examples so the digit is visible whenever rho > 0.
            ids = np.flatnonzero(labels == cls)
            ids = np.concatenate([ids[codes[ids] >= 0], ids[codes[ids] < 0]])[:per_class]
            for k, index in enumerate(ids):
                ax = axes[row, cls * per_class + k]
                ax.imshow(arrays[f"{split}_x"][index], interpolation="nearest")
                code = codes[index]
                ax.set_title(f"y={cls} a={'-' if code < 0 else code}", fontsize=6)
        axes[row, 0].set_ylabel(f"rho={rho}\n{split}", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{description}\n(y = class, a = the class the artifact names, - = clean)", fontsize=8)
    fig.tight_layout()
    return fig
