"""Figures, drawn from analysis files only (no network runs).

- t-SNE of penultimate test features (paper Fig. 2): one panel for the
  teacher and one per method's best run at lambda*; each point is drawn as
  the code of the artifact its image carries (the digit; a single-class
  artifact's target class), coloured by the image's class.
- Relevance (paper Fig. 3): example heatmaps over the images, and
  teacher-vs-student scatter plots of patch relevance with Pearson's r, one
  row per rho the students were trained at (all scored on the same images),
  the artifact's own relevance highlighted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..analysis.relevance import GRID


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.ravel(x).astype(np.float64), np.ravel(y).astype(np.float64)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def other_patches(relevance: np.ndarray, artifact_patch: np.ndarray) -> np.ndarray:
    """A mask of the patches that do not hold an image's artifact (all of them when it spans several)."""
    return np.arange(relevance.shape[1])[None, :] != np.asarray(artifact_patch)[:, None]


def artifact_share(relevance: np.ndarray, artifact_relevance: np.ndarray, artifact_patch: np.ndarray) -> float:
    """Mean over the images that carry the artifact of |R_artifact| / (|R_artifact| + sum of |R_p| over the
    other patches); for the digit, |R| of its patch over that of all 16. Images with no relevance at all are skipped."""
    on_artifact = np.abs(artifact_relevance)
    total = on_artifact + np.where(other_patches(relevance, artifact_patch), np.abs(relevance), 0.0).sum(axis=1)
    keep = np.isfinite(on_artifact) & (total > 0)
    return float((on_artifact[keep] / total[keep]).mean()) if keep.any() else float("nan")


@dataclass
class Panel:
    title: str
    features: np.ndarray
    labels: np.ndarray
    artifacts: np.ndarray


def tsne_embedding(features: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    perplexity = min(perplexity, max(2.0, (len(features) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)


def tsne_figure(panels: Sequence[Panel], settings: dict[str, Any], title: str):
    plt = _pyplot()
    import seaborn as sns

    palette = sns.color_palette(settings["palette"], n_colors=int(max(p.labels.max() for p in panels)) + 1)
    cols = min(len(panels), 3)
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.2 * rows), squeeze=False)
    rng = np.random.default_rng(settings["seed"])
    for ax, panel in zip(axes.flat, panels):
        keep = np.sort(rng.permutation(len(panel.labels))[: settings["tsne_points"]])
        xy = tsne_embedding(panel.features[keep], settings["tsne_perplexity"], settings["seed"])
        labels, codes = panel.labels[keep], panel.artifacts[keep]
        clean = codes < 0  # images without the artifact are dots; the others are drawn as its code
        ax.scatter(xy[clean, 0], xy[clean, 1], c=[palette[c] for c in labels[clean]], s=10, linewidths=0)
        for (x, y), label, code in zip(xy[~clean], labels[~clean], codes[~clean]):
            ax.text(x, y, str(code), color=palette[label], fontsize=settings["digit_font_size"],
                    fontweight="bold", ha="center", va="center")
        ax.set_xlim(xy[:, 0].min() - 2, xy[:, 0].max() + 2)
        ax.set_ylim(xy[:, 1].min() - 2, xy[:, 1].max() + 2)
        ax.set_title(panel.title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    handles = [plt.Line2D([], [], marker="o", ls="", color=palette[c], label=f"class {c}") for c in range(len(palette))]
    fig.legend(handles=handles, loc="lower center", ncol=len(palette), fontsize=8, frameon=False)
    fig.suptitle(f"{title}: colour = class, character = the artifact's class the image carries", fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    return fig


def heatmap_figure(
    images: np.ndarray,
    maps: dict[str, np.ndarray],
    rows_label: Sequence[str],
    settings: dict[str, Any],
    title: str,
):
    """Rows: images; columns: the image, then each model's relevance map over it.

    ``maps`` maps a column title to an (images x 16) relevance array.
    """
    plt = _pyplot()
    cols = 1 + len(maps)
    fig, axes = plt.subplots(len(images), cols, figsize=(1.9 * cols, 1.9 * len(images)), squeeze=False)
    size = images.shape[1]
    for row, image in enumerate(images):
        axes[row, 0].imshow(image, interpolation="nearest")
        axes[row, 0].set_ylabel(rows_label[row], fontsize=7)
        for col, (name, relevance) in enumerate(maps.items(), start=1):
            grid = relevance[row].reshape(GRID, GRID)
            limit = float(np.abs(grid).max()) or 1.0
            ax = axes[row, col]
            ax.imshow(image, interpolation="nearest")
            ax.imshow(
                grid, cmap=settings["heatmap_cmap"], vmin=-limit, vmax=limit, alpha=settings["heatmap_alpha"],
                extent=(-0.5, size - 0.5, size - 0.5, -0.5), interpolation="nearest",
            )
            if row == 0:
                ax.set_title(name, fontsize=8)
    axes[0, 0].set_title("image", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def scatter_figure(
    teacher: dict[str, np.ndarray], students: dict[str, dict[str, dict[str, np.ndarray]]], settings: dict[str, Any], title: str
):
    """Teacher (x) against student (y) relevance: a row per training rho, a panel per method; patches, and the
    artifact's own relevance highlighted. Each analysis holds relevance, artifact_relevance (and the teacher's
    artifact_patch)."""
    plt = _pyplot()
    rhos = list(students)
    methods = list(dict.fromkeys(name for row in students.values() for name in row))
    fig, axes = plt.subplots(len(rhos), len(methods), figsize=(3.2 * len(methods), 3.0 * len(rhos) + 0.4), squeeze=False)
    others = other_patches(teacher["relevance"], teacher["artifact_patch"])
    marked = np.isfinite(teacher["artifact_relevance"])
    for row, rho in enumerate(rhos):
        for col, name in enumerate(methods):
            ax = axes[row, col]
            student = students[rho].get(name)
            if student is None:
                ax.axis("off")
                continue
            ax.scatter(teacher["relevance"][others], student["relevance"][others], s=4, alpha=0.4,
                       color=settings["scatter_colour"], label="other patches")
            ax.scatter(teacher["artifact_relevance"][marked], student["artifact_relevance"][marked], s=6, alpha=0.6,
                       color=settings["digit_colour"], label="artifact")
            r = pearson(teacher["relevance"], student["relevance"])
            ax.set_title(f"{name}, trained at rho={rho}\nr = {r:.2f}", fontsize=9)
            ax.axhline(0, color="grey", lw=0.5)
            ax.axvline(0, color="grey", lw=0.5)
            if row == len(rhos) - 1:
                ax.set_xlabel("teacher relevance", fontsize=8)
        axes[row, 0].set_ylabel("student relevance", fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def comparison_figure(panels: dict[str, dict[str, dict[str, tuple[float, float]]]], names: dict[str, str], title: str):
    """Grouped bars of test accuracy, one panel per comparison: ``panels[panel][series][method] = (mean, se)``.

    Methods are the groups, in the order of ``names``; series the bars within a group; the error
    bars are the standard errors over seeds.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.0), squeeze=False)
    order = list(names)
    for ax, (panel, series) in zip(axes.flat, panels.items()):
        methods = sorted({m for cells in series.values() for m in cells}, key=order.index)
        width = 0.8 / max(1, len(series))
        for k, (label, cells) in enumerate(series.items()):
            x = [i + (k - (len(series) - 1) / 2) * width for i, m in enumerate(methods) if m in cells]
            means = [cells[m][0] for m in methods if m in cells]
            errors = [0.0 if np.isnan(cells[m][1]) else cells[m][1] for m in methods if m in cells]
            ax.bar(x, means, width, yerr=errors, label=label, capsize=2)
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels([names.get(m, m) for m in methods], fontsize=8, rotation=20)
        ax.axhline(20.0, color="grey", lw=0.6, ls="--")  # chance with five classes
        ax.set_ylim(0, 100)
        ax.set_title(panel, fontsize=9)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=len(series), frameon=False)
    axes[0, 0].set_ylabel("test accuracy (%)", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
