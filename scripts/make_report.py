#!/usr/bin/env python
"""Collect Table I, the figures, the relevance table and provenance into one self-contained HTML file."""

import argparse
import json
from pathlib import Path

from subtask_distill.io import read_json, write_text
from subtask_distill.provenance import provenance
from subtask_distill.reporting.report import benchmark_summary, build_report, study_settings
from subtask_distill.runtime import setup_logging


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True, help="the study's config, as JSON (recorded in the report)")
    p.add_argument("--table-html", type=Path, required=True)
    p.add_argument("--teacher-metrics", type=Path, nargs="+", required=True, help="teachers/<pair>/teacher_metrics.json")
    p.add_argument("--preview", type=Path, help="preview of contaminated images (embedded study)")
    p.add_argument("--figures", type=Path, nargs="+", required=True, help="PNG figures, in display order")
    p.add_argument("--relevance", type=Path, required=True, help="relevance_correlation.csv")
    p.add_argument("--benchmarks-dir", type=Path, help="folder of Snakemake benchmark TSVs (benchmarks/<rule>/...)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    config = json.loads(args.config)
    teachers = {path.parent.name: read_json(path) for path in args.teacher_metrics}
    figures = [(path.stem.replace("_", " "), path) for path in args.figures]
    text = build_report(
        config["study"], args.table_html.read_text(), teachers, args.preview, figures,
        args.relevance.read_text(), provenance(config),
        benchmark_summary(sorted(args.benchmarks_dir.rglob("*.tsv")) if args.benchmarks_dir else []),
        study_settings(config),
    )
    write_text(args.out, text)
    setup_logging("make_report").info("report of %d figures (%d kB): %s", len(figures), len(text) // 1000, args.out)


if __name__ == "__main__":
    main()
