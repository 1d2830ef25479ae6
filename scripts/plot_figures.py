#!/usr/bin/env python
"""Draw one pair's figures from analysis files: t-SNE panels, relevance heatmaps, relevance scatter plots."""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from subtask_distill.figures import Panel, heatmap_figure, scatter_figure, tsne_figure
from subtask_distill.io import atomic_path, load_arrays
from subtask_distill.methods import get_method
from subtask_distill.runtime import setup_logging
from subtask_distill.summary import load_runs, runs_at_lambda_star, teacher_analyses
from subtask_distill.table import read_table_csv


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
    p.add_argument("--table", type=Path, required=True, help="table1.csv (gives lambda*)")
    p.add_argument("--teacher-analysis", type=Path, nargs="+", required=True)
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="run folders of this pair")
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

    chosen = runs_at_lambda_star(load_runs(args.runs), read_table_csv(args.table.read_text()))
    teachers = teacher_analyses(args.teacher_analysis)
    rhos = sorted(rho for pair, rho in teachers if pair == args.pair)
    methods = list(dict.fromkeys(method for pair, _, method in chosen if pair == args.pair))
    names = {m: get_method(m).display_name for m in methods}

    def student(rho, method, key):
        """An analysis array of a method at lambda*: the best seed's, or the mean over seeds for relevance."""
        group = chosen[(args.pair, rho, method)]
        if key == "relevance":
            return np.mean([load_arrays(run["dir"] / "analysis.npz")["relevance"] for run in group], axis=0)
        return load_arrays(group[0]["dir"] / "analysis.npz")[key]

    top = rhos[-1]
    teacher = teachers[(args.pair, top)]
    panels = [Panel("Teacher", teacher["features"], teacher["labels"], teacher["digits"])]
    for method in methods:
        best = chosen[(args.pair, top, method)][0]
        panels.append(
            Panel(f"{names[method]} (λ={best['lambda']:g}, seed {best['seed']})", student(top, method, "features"),
                  teacher["labels"], teacher["digits"])
        )
    started = time.perf_counter()
    save(tsne_figure(panels, settings, f"{args.pair}, rho = {top:g}"), args.tsne, settings["dpi"])
    log.info("t-SNE of %d panels (rho = %g): %s, %.1fs", len(panels), top, args.tsne, time.perf_counter() - started)

    shown = [m for m in settings["heatmap_methods"] if m in methods]
    example_rhos = sorted({rhos[0], top})
    examples = {rho: example_rows(teachers[(args.pair, rho)], settings["heatmap_images"]) for rho in example_rhos}
    images = np.concatenate([teachers[(args.pair, rho)]["images"][examples[rho]] for rho in example_rhos])
    maps = {"Teacher": np.concatenate([teachers[(args.pair, rho)]["relevance"][examples[rho]] for rho in example_rhos])}
    for method in shown:
        maps[names[method]] = np.concatenate([student(rho, method, "relevance")[examples[rho]] for rho in example_rhos])
    labels = [
        f"rho={rho:g} y={teachers[(args.pair, rho)]['labels'][image]}"
        for rho in example_rhos
        for image in teachers[(args.pair, rho)]["relevance_images"][examples[rho]]
    ]
    title = f"{args.pair}: occlusion relevance (red: supports the true class)"
    save(heatmap_figure(images, maps, labels, settings, title), args.heatmaps, settings["dpi"])
    log.info("relevance maps of %d images, %d models: %s", len(images), len(maps), args.heatmaps)

    students = {names[m]: student(top, m, "relevance") for m in methods}
    title = f"{args.pair}, rho = {top:g}: patch relevance, teacher vs student (mean over seeds at λ*)"
    save(scatter_figure(teacher["relevance"], students, settings, title), args.scatter, settings["dpi"])
    log.info("relevance scatter plots of %d students: %s", len(students), args.scatter)


if __name__ == "__main__":
    main()
