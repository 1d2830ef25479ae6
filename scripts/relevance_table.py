#!/usr/bin/env python
"""Teacher-student correlation of occlusion relevance per (pair, method, rho), at lambda*."""

import argparse
from pathlib import Path

from subtask_distill.io import csv_text, write_text
from subtask_distill.summary import RELEVANCE_COLUMNS, load_runs, relevance_rows, runs_at_lambda_star, teacher_analyses
from subtask_distill.table import read_table_csv


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--table", type=Path, required=True, help="table1.csv (gives lambda*)")
    p.add_argument("--teacher-analysis", type=Path, nargs="+", required=True)
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="run folders (metrics.json, analysis.npz)")
    p.add_argument("--out", type=Path, required=True, help="output CSV")
    args = p.parse_args()
    chosen = runs_at_lambda_star(load_runs(args.runs), read_table_csv(args.table.read_text()))
    rows = relevance_rows(chosen, teacher_analyses(args.teacher_analysis))
    write_text(args.out, csv_text(rows, RELEVANCE_COLUMNS))
    print(csv_text(rows, RELEVANCE_COLUMNS))


if __name__ == "__main__":
    main()
