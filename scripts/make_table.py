#!/usr/bin/env python
"""Select lambda on validation accuracy and write Table I (CSV and Markdown)."""

import argparse
from pathlib import Path

from subtask_distill.io import read_json, write_text
from subtask_distill.methods import get_method
from subtask_distill.table import build_table, table_csv, table_markdown


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--metrics", type=Path, nargs="+", required=True, help="metrics.json of every run")
    p.add_argument("--teacher-accuracy", type=Path, nargs="+", required=True, help="accuracy JSONs from teacher_logits.py")
    p.add_argument("--csv", type=Path, required=True)
    p.add_argument("--markdown", type=Path, required=True)
    args = p.parse_args()

    runs = [read_json(path) for path in args.metrics]
    teacher: dict[tuple[str, float], list[float]] = {}
    for path in args.teacher_accuracy:
        record = read_json(path)
        teacher.setdefault((record["pair"], float(record["rho"])), []).append(record["test_acc"])
    teacher_acc = {key: sum(v) / len(v) for key, v in teacher.items()}

    rows = build_table(runs, teacher_acc)
    names = {run["method"]: get_method(run["method"]).display_name for run in runs}
    write_text(args.csv, table_csv(rows))
    write_text(args.markdown, table_markdown(rows, names))
    print(table_markdown(rows, names))


if __name__ == "__main__":
    main()
