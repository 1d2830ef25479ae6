"""Selection of lambda on validation data and the study's Table I.

Computed from runs.csv. Per (selection rule, pair, method, rho): lambda* maximises the mean validation
accuracy over seeds (ties go to the smaller lambda), on the rule's validation split and at the rule's
best epoch of each run; the table reports the mean test accuracy at lambda* and its standard error,
std / sqrt(n) with the sample standard deviation.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from typing import Any, Iterable, Sequence

import numpy as np

from ..io import csv_text

TABLE_COLUMNS = (
    "selection",
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


def select_lambda(val_by_lambda: dict[str, Sequence[float]]) -> str:
    """The lambda with the best mean validation accuracy; ties go to the smaller lambda."""
    if not val_by_lambda:
        raise ValueError("no runs to select from")
    best_lam, best_mean = None, -math.inf
    for lam in sorted(val_by_lambda, key=float):
        mean = float(np.mean(val_by_lambda[lam]))
        if mean > best_mean + _TIE_TOLERANCE:
            best_lam, best_mean = lam, mean
    return best_lam


def build_table(runs: Iterable[dict[str, Any]], teacher_acc: dict[tuple[str, str], float]) -> list[dict[str, Any]]:
    """Rows of Table I from the rows of runs.csv (selection, pair, method, rho, lambda, seed, val_acc, test_acc).

    ``teacher_acc`` maps (pair, rho) to the teacher's subtask test accuracy. Rows are ordered by
    selection rule, pair and method as they first appear in ``runs``, and by rho.
    """
    grouped: dict[tuple[str, str, str, str], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        grouped[(run.get("selection", "oracle"), run["pair"], run["rho"], run["method"])][run["lambda"]].append(run)
    rules = list(dict.fromkeys(key[0] for key in grouped))
    pairs = list(dict.fromkeys(key[1] for key in grouped))
    methods = list(dict.fromkeys(key[3] for key in grouped))

    def order(key):
        return rules.index(key[0]), pairs.index(key[1]), float(key[2]), methods.index(key[3])

    rows = []
    for rule, pair, rho, method in sorted(grouped, key=order):
        by_lambda = grouped[(rule, pair, rho, method)]
        lam = select_lambda({k: [r["val_acc"] for r in v] for k, v in by_lambda.items()})
        chosen = by_lambda[lam]
        test = [r["test_acc"] for r in chosen]
        rows.append(
            {
                "selection": rule,
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
    return csv_text(rows, TABLE_COLUMNS)


def read_table_csv(text: str) -> list[dict[str, Any]]:
    """Table I's rows, numbers as numbers and rho and lambda as the strings they are."""
    rows = []
    for raw in csv.DictReader(io.StringIO(text)):
        row: dict[str, Any] = dict(raw)
        for key in ("val_acc_mean", "test_acc_mean", "test_acc_se", "teacher_test_acc"):
            row[key] = float(row[key])
        row["n_seeds"] = int(row["n_seeds"])
        rows.append(row)
    return rows


def chosen_runs(table_rows: Sequence[dict[str, Any]], rule: str) -> set[tuple[str, str, str, str]]:
    """(pair, method, rho, lambda*) of every cell of Table I under selection ``rule``: the runs it reports (all seeds)."""
    return {(row["pair"], row["method"], row["rho"], row["lambda"]) for row in table_rows if row["selection"] == rule}
