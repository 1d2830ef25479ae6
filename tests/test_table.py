import csv
import io
import math

import pytest

from subtask_distill.reporting.runs import history_csv, read_runs_csv, runs_csv
from subtask_distill.reporting.table import (
    build_table,
    chosen_runs,
    read_table_csv,
    select_lambda,
    standard_error,
    table_csv,
)


def test_selection_picks_best_mean_validation_accuracy():
    # Means: 85, 88, 84.5 -> lambda 1 although lambda 10 holds the single best seed.
    assert select_lambda({"0.1": [80, 90], "1": [88, 88], "10": [70, 99]}) == "1"


def test_selection_ties_go_to_the_smaller_lambda():
    assert select_lambda({"10": [90, 80], "0.1": [85, 85], "1": [80, 90]}) == "0.1"
    assert select_lambda({"100": [50.0], "0.01": [50.0]}) == "0.01", "smaller by value, not by string order"


def test_selection_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        select_lambda({})


def test_standard_error_uses_the_sample_std():
    assert math.isclose(standard_error([1.0, 3.0]), 1.0)  # std 1.414 / sqrt 2
    assert math.isnan(standard_error([5.0]))


def runs(method, lam, vals, tests, pair="p", rho="1"):
    return [
        {"pair": pair, "rho": rho, "method": method, "lambda": lam, "seed": s, "val_acc": v, "test_acc": t}
        for s, (v, t) in enumerate(zip(vals, tests))
    ]


def test_table_reports_test_accuracy_at_the_selected_lambda():
    records = runs("kd", "0", [60, 62], [40, 44]) + runs("at", "0.1", [70, 72], [80, 84]) + runs("at", "1", [90, 90], [50, 52])
    rows = build_table(records, {("p", "1"): 97.5})
    by_method = {r["method"]: r for r in rows}
    assert by_method["at"]["lambda"] == "1"
    assert by_method["at"]["test_acc_mean"] == 51.0
    assert math.isclose(by_method["at"]["test_acc_se"], 1.0)
    assert by_method["kd"]["n_seeds"] == 2 and by_method["kd"]["teacher_test_acc"] == 97.5

    back = read_table_csv(table_csv(rows))
    assert [(r["rho"], r["method"], r["lambda"], r["test_acc_mean"]) for r in back] == [
        ("1", "kd", "0", 42.0), ("1", "at", "1", 51.0)
    ]
    assert chosen_runs(back, "oracle") == {("p", "kd", "1", "0"), ("p", "at", "1", "1")}


def test_rows_are_ordered_by_rho_as_a_number():
    records = runs("kd", "0", [60], [40], rho="1") + runs("kd", "0", [60], [40], rho="0.5") + runs("kd", "0", [60], [40], rho="0")
    assert [r["rho"] for r in build_table(records, {})] == ["0", "0.5", "1"]


def test_runs_csv_keeps_every_digit_and_canonical_keys_whatever_a_metrics_file_holds():
    metrics = {
        "pair": "p", "method": "vid", "rho": 0.5, "lambda": 100.0, "seed": 2, "best_epoch": 3, "epochs_run": 4,
        "val_acc": 61.224489795918366, "test_acc": 55.1, "wall_time_s": 12.5,
        "history": [{"epoch": 1, "loss": 1.5, "kd": 1.0, "layers": 0.5, "val_acc": 40.0}, {"epoch": 2, "loss": 1.25}],
        "provenance": {"git": {"commit": "abc", "dirty": False}, "versions": {"torch": "2.9"},
                       "machine": {"device": "cpu", "cpu": "Some CPU", "cpu_capability": "AVX2", "torch_threads": 2}, "finished_utc": "2026-12-01T00:00:00+00:00"},
    }
    (row,) = read_runs_csv(runs_csv([metrics, dict(metrics, rho="0.5", **{"lambda": "100"})])[:-1].rsplit("\n", 1)[0] + "\n")
    assert (row["rho"], row["lambda"], row["seed"], row["best_epoch"]) == ("0.5", "100", 2, 3)
    assert row["val_acc"] == metrics["val_acc"] and row["commit"] == "abc" and row["cpu"] == "Some CPU"
    assert (row["cpu_capability"], row["threads"]) == ("AVX2", "2")
    history = list(csv.DictReader(io.StringIO(history_csv([metrics]))))
    assert [h["epoch"] for h in history] == ["1", "2"] and history[0]["rho"] == "0.5" and history[0]["lambda"] == "100"
    assert list(history[0])[:6] == ["pair", "method", "rho", "lambda", "seed", "epoch"] and history[1]["kd"] == ""
