#!/usr/bin/env python
"""Teacher-student correlation of occlusion relevance per (pair, method, rho), at lambda*."""

import argparse
from pathlib import Path

from subtask_distill.io import csv_text, write_text
from subtask_distill.reporting.summary import (
    RELEVANCE_COLUMNS,
    group_chosen_runs,
    load_runs,
    relevance_rows,
    teacher_analyses,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--teacher-analysis", type=Path, nargs="+", required=True)
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="folders of the runs at lambda* (metrics.json, analysis.npz)")
    p.add_argument("--out", type=Path, required=True, help="output CSV")
    args = p.parse_args()
    chosen = group_chosen_runs(load_runs(args.runs))
    rows = relevance_rows(chosen, teacher_analyses(args.teacher_analysis))
    write_text(args.out, csv_text(rows, RELEVANCE_COLUMNS))
    print(csv_text(rows, RELEVANCE_COLUMNS))


if __name__ == "__main__":
    main()
