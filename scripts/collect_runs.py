#!/usr/bin/env python
"""Collect every run's metrics.json into runs.csv (one row per run) and history.csv (one row per run and epoch)."""

import argparse
from pathlib import Path

from subtask_distill.io import read_json, write_text
from subtask_distill.reporting.runs import history_csv, runs_csv


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--metrics", type=Path, nargs="+", required=True, help="metrics.json of every run")
    p.add_argument("--runs", type=Path, required=True, help="output: runs.csv")
    p.add_argument("--history", type=Path, required=True, help="output: history.csv")
    args = p.parse_args()
    metrics = [read_json(path) for path in args.metrics]
    write_text(args.runs, runs_csv(metrics))
    write_text(args.history, history_csv(metrics))
    print(f"{len(metrics)} runs, {sum(len(m['history']) for m in metrics)} epochs: {args.runs}, {args.history}")


if __name__ == "__main__":
    main()
