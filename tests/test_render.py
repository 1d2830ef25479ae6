import math

import pytest

from subtask_distill.reporting import render


@pytest.mark.parametrize(
    "accuracy,expected",
    [(0.0, "red"), (34.0, "red"), (50.0, "red"), (50.01, "orange"), (75.0, "orange"), (75.01, "yellow"),
     (90.0, "yellow"), (90.01, None), (100.0, None), (math.nan, None)],
)
def test_colour_bands_at_the_boundaries(accuracy, expected):
    assert render.band(accuracy) == expected


def row(pair, rho, method, mean, se, lam="1", ref=97.0):
    return {"pair": pair, "rho": rho, "method": method, "lambda": lam, "n_seeds": 2, "val_acc_mean": mean,
            "test_acc_mean": mean, "test_acc_se": se, "teacher_test_acc": ref}


NAMES = {"kd": "Output only", "subdistill": "SubDistill"}
ROWS = [
    row("embedded", "1", "kd", 34.0, 6.5, lam="0"),
    row("embedded", "1", "subdistill", 88.0, 1.5),
    row("embedded", "0", "kd", 96.5, 0.2, lam="0"),
    row("embedded", "0", "subdistill", 95.0, math.nan),
]


def test_layout_groups_by_pair_and_rho_with_the_max_error():
    lines = render.layout(ROWS, ["kd", "subdistill"])
    assert [(l.pair, l.rho) for l in lines] == [("embedded", "1"), ("embedded", "0")]
    assert lines[0].max_err == 6.5 and lines[1].max_err == 0.2  # NaN errors (one seed) are ignored
    assert lines[0].cells[1].mean == 88.0 and lines[0].paper_ref is None


def test_markdown_marks_the_bands():
    text = render.markdown(ROWS, ["kd", "subdistill"], NAMES)
    header, _, first, second = text.splitlines()[:4]
    assert header == "| pair | rho | Ref | Output only | SubDistill | max err |"
    assert first == "| embedded | 1 | 97.0 | 🟥 34.0 ± 6.5 (λ=0) | 🟨 88.0 ± 1.5 (λ=1) | 6.5 |"
    assert second == "| embedded | 0 | 97.0 | 96.5 ± 0.2 (λ=0) | 95.0 ± – (λ=1) | 0.2 |"


def test_html_and_latex_colour_the_cells():
    html = render.html_table(ROWS, ["kd", "subdistill"], NAMES)
    assert html.count("background:#f4a6a6") == 1 and html.count("background:#fbec8f") == 1
    latex = render.latex(ROWS, ["kd", "subdistill"], NAMES)
    assert r"\cellcolor{red!35}34.0" in latex and r"\cellcolor{yellow!50}88.0" in latex
    assert r"\end{tabular}" in latex


def test_paper_scale_rows_show_the_papers_values():
    paper = render.paper_table()
    assert len(paper) == 9 and paper[("wrn101_to_mbnv4", "1")]["subdistill"] == 66.9
    rows = [row("resnet18_to_resnet18s", "1", "kd", 47.0, 1.0, ref=97.0)]
    text = render.markdown(rows, ["kd"], NAMES)
    assert "| resnet18_to_resnet18s | 1 | 97.0 (97.2) | 🟥 47.0 (45.6) ± 1.0 (λ=1) | 1.0 |" in text
    assert "the paper's value" in text
