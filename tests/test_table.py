import math

import pytest

from subtask_distill.table import build_table, read_table_csv, select_lambda, standard_error, table_csv


def test_selection_picks_best_mean_validation_accuracy():
    # Means: 85, 88, 84.5 -> lambda 1 although lambda 10 holds the single best seed.
    assert select_lambda({0.1: [80, 90], 1.0: [88, 88], 10.0: [70, 99]}) == 1.0


def test_selection_ties_go_to_the_smaller_lambda():
    assert select_lambda({10.0: [90, 80], 0.1: [85, 85], 1.0: [80, 90]}) == 0.1
    assert select_lambda({100.0: [50.0], 0.01: [50.0]}) == 0.01


def test_selection_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        select_lambda({})


def test_standard_error_uses_the_sample_std():
    assert math.isclose(standard_error([1.0, 3.0]), 1.0)  # std 1.414 / sqrt 2
    assert math.isnan(standard_error([5.0]))


def runs(method, lam, vals, tests, pair="p", rho=1.0):
    return [
        {"pair": pair, "rho": rho, "method": method, "lambda": lam, "seed": s, "val_acc": v, "test_acc": t}
        for s, (v, t) in enumerate(zip(vals, tests))
    ]


def test_table_reports_test_accuracy_at_the_selected_lambda():
    records = runs("kd", 0.0, [60, 62], [40, 44]) + runs("at", 0.1, [70, 72], [80, 84]) + runs("at", 1.0, [90, 90], [50, 52])
    rows = build_table(records, {("p", 1.0): 97.5})
    by_method = {r["method"]: r for r in rows}
    assert by_method["at"]["lambda"] == 1.0
    assert by_method["at"]["test_acc_mean"] == 51.0
    assert math.isclose(by_method["at"]["test_acc_se"], 1.0)
    assert by_method["kd"]["n_seeds"] == 2 and by_method["kd"]["teacher_test_acc"] == 97.5

    back = read_table_csv(table_csv(rows))
    assert [(r["method"], r["lambda"], r["test_acc_mean"]) for r in back] == [("kd", 0.0, 42.0), ("at", 1.0, 51.0)]
