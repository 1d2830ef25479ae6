"""Selection of lambda on validation data and the study's Table I.

Per (pair, method, rho): lambda* maximises the mean validation accuracy over
seeds (ties go to the smaller lambda); the table reports the mean test
accuracy at lambda* and its standard error, std / sqrt(n) with the sample
standard deviation.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from typing import Any, Iterable, Sequence

import numpy as np

TABLE_COLUMNS = (
    "pair",
    "rho",
    "method",
    "lambda",
    "n_seeds",
    "val_acc_mean",
    "test_acc_mean",
    "test_acc_se",
    "teacher_test_acc",
)
_TIE_TOLERANCE = 1e-9


def standard_error(values: Sequence[float]) -> float:
    """Sample std / sqrt(n); NaN for fewer than two values."""
    if len(values) < 2:
        return float("nan")
    return float(np.std(values, ddof=1) / math.sqrt(len(values)))


def select_lambda(val_by_lambda: dict[float, Sequence[float]]) -> float:
    """The lambda with the best mean validation accuracy; ties go to the smaller lambda."""
    if not val_by_lambda:
        raise ValueError("no runs to select from")
    best_lam, best_mean = None, -math.inf
    for lam in sorted(val_by_lambda):
        mean = float(np.mean(val_by_lambda[lam]))
        if mean > best_mean + _TIE_TOLERANCE:
            best_lam, best_mean = lam, mean
    return best_lam


def build_table(runs: Iterable[dict[str, Any]], teacher_acc: dict[tuple[str, float], float]) -> list[dict[str, Any]]:
    """Rows of Table I from run metrics (pair, method, rho, lambda, seed, val_acc, test_acc).

    ``teacher_acc`` maps (pair, rho) to the teacher's subtask test accuracy.
    Rows follow the order in which (pair, rho, method) first appear in ``runs``.
    """
    grouped: dict[tuple[str, float, str], dict[float, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        grouped[(run["pair"], float(run["rho"]), run["method"])][float(run["lambda"])].append(run)
    rows = []
    for (pair, rho, method), by_lambda in grouped.items():
        lam = select_lambda({k: [r["val_acc"] for r in v] for k, v in by_lambda.items()})
        chosen = by_lambda[lam]
        test = [r["test_acc"] for r in chosen]
        rows.append(
            {
                "pair": pair,
                "rho": rho,
                "method": method,
                "lambda": lam,
                "n_seeds": len(chosen),
                "val_acc_mean": float(np.mean([r["val_acc"] for r in chosen])),
                "test_acc_mean": float(np.mean(test)),
                "test_acc_se": standard_error(test),
                "teacher_test_acc": teacher_acc.get((pair, rho), float("nan")),
            }
        )
    return rows


def table_csv(rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                key: f"{value:g}" if key in ("rho", "lambda") else f"{value:.4f}" if isinstance(value, float) else value
                for key, value in row.items()
            }
        )
    return buffer.getvalue()


def read_table_csv(text: str) -> list[dict[str, Any]]:
    rows = []
    for raw in csv.DictReader(io.StringIO(text)):
        row: dict[str, Any] = dict(raw)
        for key in ("rho", "lambda", "val_acc_mean", "test_acc_mean", "test_acc_se", "teacher_test_acc"):
            row[key] = float(row[key])
        row["n_seeds"] = int(row["n_seeds"])
        rows.append(row)
    return rows


def _cell(value: float, digits: int = 1) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def table_markdown(rows: Sequence[dict[str, Any]], method_names: dict[str, str]) -> str:
    """Paper layout: one line per (pair, rho); Ref, one column per method, max err.

    Method cells read "test accuracy ± standard error (lambda*)".
    """
    methods = [m for m in method_names if any(r["method"] == m for r in rows)]
    by_key = {(r["pair"], r["rho"], r["method"]): r for r in rows}
    lines = [
        "| pair | rho | Ref | " + " | ".join(method_names[m] for m in methods) + " | max err |",
        "|---|---|---|" + "---|" * len(methods) + "---|",
    ]
    seen = []
    for r in rows:
        if (r["pair"], r["rho"]) not in seen:
            seen.append((r["pair"], r["rho"]))
    for pair, rho in seen:
        cells = [by_key.get((pair, rho, m)) for m in methods]
        present = [c for c in cells if c is not None]
        errors = [c["test_acc_se"] for c in present if not math.isnan(c["test_acc_se"])]
        text = [
            "n/a" if c is None else f"{_cell(c['test_acc_mean'])} ± {_cell(c['test_acc_se'])} (λ={c['lambda']:g})"
            for c in cells
        ]
        ref = present[0]["teacher_test_acc"] if present else float("nan")
        max_err = _cell(max(errors)) if errors else "–"
        lines.append(f"| {pair} | {rho:g} | {_cell(ref)} | " + " | ".join(text) + f" | {max_err} |")
    return "\n".join(lines) + "\n"
