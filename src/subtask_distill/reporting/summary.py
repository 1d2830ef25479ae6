"""From the chosen runs (those Table I reports) to what the figures show, and the relevance table."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..io import load_arrays, read_json
from ..study import format_number
from .figures import artifact_share, pearson
from .runs import run_key

RELEVANCE_COLUMNS = (
    "pair",
    "method",
    "rho",
    "scored_rho",
    "lambda",
    "n_seeds",
    "correlation",
    "n_points",
    "teacher_artifact_share",
    "student_artifact_share",
)


def load_runs(run_dirs: Iterable[Path]) -> list[dict[str, Any]]:
    """Each run's key (rho and lambda as canonical strings), its accuracies and its folder."""
    runs = []
    for folder in run_dirs:
        metrics = read_json(Path(folder) / "metrics.json")
        runs.append({**run_key(metrics), "val_acc": metrics["val_acc"], "dir": Path(folder)})
    return runs


def group_chosen_runs(runs: Sequence[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict]]:
    """(pair, rho, method) -> its runs (the seeds at lambda*), best validation accuracy first.

    The workflow passes only the runs Table I reports; runs of one cell at two
    lambdas mean that something else was passed, which is an error.
    """
    out: dict[tuple[str, str, str], list[dict]] = {}
    for run in runs:
        out.setdefault((run["pair"], run["rho"], run["method"]), []).append(run)
    for (pair, rho, method), group in out.items():
        lambdas = sorted({run["lambda"] for run in group}, key=float)
        if len(lambdas) > 1:
            raise ValueError(f"runs of {pair}/{method}/rho{rho} at several lambdas ({', '.join(lambdas)}): "
                             "expected only the runs at lambda*")
        group.sort(key=lambda r: (-r["val_acc"], r["seed"]))
    return out


def teacher_analyses(paths: Iterable[Path]) -> dict[str, dict[str, np.ndarray]]:
    """Each pair's teacher analysis, keyed by pair."""
    return {str(arrays["pair"]): arrays for arrays in map(load_arrays, paths)}


def mean_student_relevance(group: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The patch and artifact relevance of a method's runs (its seeds at lambda*), averaged over the runs."""
    analyses = [load_arrays(run["dir"] / "analysis.npz") for run in group]
    return {key: np.mean([a[key] for a in analyses], axis=0) for key in ("relevance", "artifact_relevance")}


def relevance_rows(chosen: dict[tuple, list[dict]], teachers: dict[str, dict[str, np.ndarray]]) -> list[dict[str, Any]]:
    """Per (pair, method, rho trained at): Pearson r between teacher and seed-averaged student patch relevance.

    Teacher and students are scored on the same images (those of ``scored_rho``).
    """
    rows = []
    for (pair, rho, method), group in chosen.items():
        teacher = teachers[pair]
        student = mean_student_relevance(group)
        if student["relevance"].shape != teacher["relevance"].shape:
            raise ValueError(
                f"relevance of {pair}/{method}/rho{rho} is {student['relevance'].shape}, the teacher's {teacher['relevance'].shape}"
            )
        rows.append(
            {
                "pair": pair,
                "method": method,
                "rho": rho,
                "scored_rho": format_number(teachers[pair]["scored_rho"]),
                "lambda": group[0]["lambda"],
                "n_seeds": len(group),
                "correlation": pearson(teacher["relevance"], student["relevance"]),
                "n_points": int(teacher["relevance"].size),
                "teacher_artifact_share": artifact_share(teacher["relevance"], teacher["artifact_relevance"], teacher["artifact_patch"]),
                "student_artifact_share": artifact_share(student["relevance"], student["artifact_relevance"], teacher["artifact_patch"]),
            }
        )
    return rows
