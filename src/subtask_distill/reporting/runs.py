"""The study's tidy tables: one row per run and selection rule (runs.csv) and one per run and epoch (history.csv).

A run trained once is chosen by each of the study's selection rules (``selection``): each picks its
own best epoch on its own validation split, so runs.csv holds one row per rule.

rho and lambda stay the canonical strings of the run's path ("0.5", "100")
from the config to Table I, so a run is looked up by equality, never by
comparing floats.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable, Sequence

from ..io import csv_text
from ..study import format_number

KEY_COLUMNS = ("pair", "method", "rho", "lambda", "seed")
RUN_COLUMNS = (
    *KEY_COLUMNS,
    "selection",
    "layers",
    "best_epoch",
    "epochs_run",
    "val_acc",
    "test_acc",
    "wall_time_s",
    "commit",
    "dirty",
    "device",
    "cpu",
    "cpu_capability",
    "threads",
    "torch",
    "finished_utc",
)
HISTORY_FIXED = (*KEY_COLUMNS, "epoch")
HISTORY_ORDER = ("loss", "kd", "layers", "val_acc", "lr", "seconds")
_NUMBERS = {"best_epoch": int, "epochs_run": int, "seed": int, "val_acc": float, "test_acc": float, "wall_time_s": float}


def run_key(metrics: dict[str, Any]) -> dict[str, Any]:
    """A run's grid coordinates, rho and lambda as canonical strings (whatever type a metrics file holds)."""
    return {
        "pair": metrics["pair"],
        "method": metrics["method"],
        "rho": format_number(metrics["rho"]),
        "lambda": format_number(metrics["lambda"]),
        "seed": int(metrics["seed"]),
    }


def run_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of runs.csv from a run's metrics.json: one per selection rule."""
    provenance = metrics.get("provenance", {})
    machine = provenance.get("machine", {})
    common = {
        **run_key(metrics),
        "layers": metrics.get("layers", "all"),
        **{name: metrics[name] for name in ("epochs_run", "wall_time_s")},
        "commit": provenance.get("git", {}).get("commit"),
        "dirty": provenance.get("git", {}).get("dirty"),
        "device": machine.get("gpu") or machine.get("device"),
        "cpu": machine.get("cpu"),
        "cpu_capability": machine.get("cpu_capability"),
        "threads": machine.get("torch_threads"),
        "torch": provenance.get("versions", {}).get("torch"),
        "finished_utc": provenance.get("finished_utc"),
    }
    selections = metrics.get("selections") or {
        metrics.get("selection", "oracle"): {name: metrics[name] for name in ("best_epoch", "val_acc", "test_acc")}
    }
    first = metrics.get("selection")  # the run's own rule first, as the study lists them
    rules = sorted(selections, key=lambda rule: rule != first)
    return [{**common, "selection": rule, **selections[rule]} for rule in rules]


def history_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per epoch of a run: its key, the epoch and every number the loop logged for it."""
    key = run_key(metrics)
    return [{**key, **epoch} for epoch in metrics["history"]]


def history_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The key and epoch, the loop's quantities in a fixed order, then any others (methods log different terms)."""
    logged = dict.fromkeys(name for row in rows for name in row if name not in HISTORY_FIXED)
    return [*HISTORY_FIXED, *(n for n in HISTORY_ORDER if n in logged), *(n for n in logged if n not in HISTORY_ORDER)]


def runs_csv(metrics: Iterable[dict[str, Any]]) -> str:
    """runs.csv, every number with all its digits (Table I is computed from it)."""
    return csv_text([row for m in metrics for row in run_rows(m)], RUN_COLUMNS, decimals=None)


def history_csv(metrics: Iterable[dict[str, Any]]) -> str:
    rows = [row for m in metrics for row in history_rows(m)]
    return csv_text(rows, history_columns(rows), decimals=None)


def read_runs_csv(text: str) -> list[dict[str, Any]]:
    """The rows of runs.csv, numbers as numbers and rho and lambda as the strings they are."""
    rows = []
    for raw in csv.DictReader(io.StringIO(text)):
        row: dict[str, Any] = dict(raw)
        for name, kind in _NUMBERS.items():
            row[name] = kind(row[name])
        rows.append(row)
    return rows
