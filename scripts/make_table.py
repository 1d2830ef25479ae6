#!/usr/bin/env python
"""Select lambda on validation accuracy and write Table I (CSV, Markdown, HTML, LaTeX) from runs.csv."""

import argparse
from pathlib import Path

from subtask_distill.io import read_json, write_text
from subtask_distill.methods import display_name
from subtask_distill.reporting import render
from subtask_distill.reporting.runs import read_runs_csv
from subtask_distill.reporting.table import build_table, table_csv
from subtask_distill.study import format_number


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=Path, required=True, help="runs.csv: one row per run")
    p.add_argument("--teacher-accuracy", type=Path, nargs="+", required=True, help="accuracy JSONs from teacher_logits.py")
    p.add_argument("--csv", type=Path, required=True, help="Table I, one row per (pair, rho, method)")
    p.add_argument("--markdown", type=Path, help="paper layout, Markdown")
    p.add_argument("--html", type=Path, help="paper layout, HTML with the paper's colour bands")
    p.add_argument("--latex", type=Path, help="paper layout, LaTeX tabular with the colour bands")
    args = p.parse_args()

    runs = read_runs_csv(args.runs.read_text())
    teacher: dict[tuple[str, str], list[float]] = {}
    for path in args.teacher_accuracy:
        record = read_json(path)
        teacher.setdefault((record["pair"], format_number(record["rho"])), []).append(record["test_acc"])
    teacher_acc = {key: sum(v) / len(v) for key, v in teacher.items()}

    rows = build_table(runs, teacher_acc)
    methods = list(dict.fromkeys(run["method"] for run in runs))
    names = {m: display_name(m) for m in methods}
    write_text(args.csv, table_csv(rows))
    for path, renderer in ((args.markdown, render.markdown), (args.html, render.html_table), (args.latex, render.latex)):
        if path is not None:
            write_text(path, render.per_rule(renderer, rows, methods, names))
    print(render.per_rule(render.markdown, rows, methods, names))



if __name__ == "__main__":
    main()
