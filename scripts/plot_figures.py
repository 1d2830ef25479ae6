#!/usr/bin/env python
"""Draw one pair's figures from analysis files: t-SNE panels, relevance heatmaps, relevance scatter plots."""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from subtask_distill.io import atomic_path, load_arrays
from subtask_distill.methods import display_name
from subtask_distill.reporting.figures import Panel, heatmap_figure, scatter_figure, tsne_figure
from subtask_distill.reporting.summary import group_chosen_runs, load_runs, mean_student_relevance, teacher_analyses
from subtask_distill.runtime import setup_logging
from subtask_distill.study import format_number


def save(figure, path: Path, dpi: int) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, format="png")


def example_rows(teacher: dict, count: int) -> np.ndarray:
    """Rows of the relevance arrays to show: one image per class in turn, ``count`` in all."""
    labels = teacher["labels"][teacher["relevance_images"]]
    by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    picked = [rows[i] for i in range(max(map(len, by_class))) for rows in by_class if i < len(rows)]
    return np.array(picked[:count], dtype=int)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--pair", required=True)
    p.add_argument("--teacher-analysis", type=Path, required=True, help="the teacher's analysis file")
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="folders of this pair's runs at lambda*")
    p.add_argument("--settings", required=True, help="the config's plots section, as JSON")
    p.add_argument("--tsne", type=Path, required=True)
    p.add_argument("--heatmaps", type=Path, required=True)
    p.add_argument("--scatter", type=Path, required=True)
    p.add_argument("--threads", type=int, default=1, help="threads of t-SNE (the same embedding on any number)")
    args = p.parse_args()
    log = setup_logging("plot_figures")
    with threadpool_limits(args.threads):
        plot(args, log)


def plot(args: argparse.Namespace, log) -> None:
    settings = json.loads(args.settings)

    chosen = group_chosen_runs(load_runs(args.runs))
    teacher = teacher_analyses([args.teacher_analysis])[args.pair]
    scored = format_number(teacher["scored_rho"])
    rhos = sorted({rho for pair, rho, _ in chosen if pair == args.pair}, key=float)
    methods = list(dict.fromkeys(method for pair, _, method in chosen if pair == args.pair))
    names = {m: display_name(m) for m in methods}

    def relevance(rho, method):
        return mean_student_relevance(chosen[(args.pair, rho, method)])

    top = rhos[-1]
    panels = [Panel("Teacher", teacher["features"], teacher["labels"], teacher["artifacts"])]
    for method in methods:
        best = chosen[(args.pair, top, method)][0]
        features = load_arrays(best["dir"] / "analysis.npz")["features"]
        panels.append(
            Panel(f"{names[method]} (λ={best['lambda']}, seed {best['seed']})", features, teacher["labels"], teacher["artifacts"])
        )
    started = time.perf_counter()
    save(tsne_figure(panels, settings, f"{args.pair}, trained and tested at rho = {top}"), args.tsne, settings["dpi"])
    log.info("t-SNE of %d panels (rho = %s): %s, %.1fs", len(panels), top, args.tsne, time.perf_counter() - started)

    # As the paper's Fig. 3: the students trained at the smallest and at the largest rho, on the same images.
    shown = [m for m in settings["heatmap_methods"] if m in methods]
    examples = example_rows(teacher, settings["heatmap_images"])
    maps = {"Teacher": teacher["relevance"][examples]}
    for method in shown:
        for rho in sorted({rhos[0], top}):
            maps[f"{names[method]}, trained at rho={rho}"] = relevance(rho, method)["relevance"][examples]
    labels = [f"y={teacher['labels'][image]} a={teacher['artifacts'][image]}" for image in teacher["relevance_images"][examples]]
    title = f"{args.pair}: occlusion relevance on test images of rho = {scored} (red: supports the true class)"
    save(heatmap_figure(teacher["images"][examples], maps, labels, settings, title), args.heatmaps, settings["dpi"])
    log.info("relevance maps of %d images, %d models: %s", len(examples), len(maps), args.heatmaps)

    students = {rho: {names[m]: relevance(rho, m) for m in methods} for rho in rhos}
    title = f"{args.pair}: patch relevance on test images of rho = {scored}, teacher vs students (mean over seeds at λ*)"
    save(scatter_figure(teacher, students, settings, title), args.scatter, settings["dpi"])
    log.info("relevance scatter plots of %d methods x %d training rhos: %s", len(methods), len(rhos), args.scatter)


if __name__ == "__main__":
    main()
