#!/usr/bin/env python
"""Bar charts comparing the Table I of several studies at one rho (the figure of docs/questions.md).

Each --panel is a title followed by series LABEL=TABLE[#RULE][@SUBSET]: a table1.csv, its selection rule
(default: the first in the table) and a layer subset (default: all layers; e.g. @L12).
"""

import argparse
import csv
from pathlib import Path

from subtask_distill.io import atomic_path
from subtask_distill.methods import display_name
from subtask_distill.reporting.figures import comparison_figure
from subtask_distill.runtime import setup_logging
from subtask_distill.study import ALL_LAYERS, parse_variant


def series_cells(spec: str, rho: str) -> tuple[str, dict[str, tuple[float, float]]]:
    """(label, {method: (mean, se)}) of one LABEL=TABLE[#RULE][@SUBSET] series."""
    label, _, rest = spec.partition("=")
    rest, _, subset = rest.partition("@")
    path, _, rule = rest.partition("#")
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    rule = rule or rows[0]["selection"]
    cells = {}
    for row in rows:
        method, layers = parse_variant(row["method"])
        if row["selection"] == rule and row["rho"] == rho and layers == (subset.removeprefix("L") or ALL_LAYERS):
            cells[method] = (float(row["test_acc_mean"]), float(row["test_acc_se"]))
    if not cells:
        raise SystemExit(f"{spec}: no rows at rho {rho} (rule {rule!r}, subset {subset or 'all'!r})")
    return label, cells


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--panel", nargs="+", action="append", required=True, metavar="TITLE SERIES", help="a title, then its series")
    p.add_argument("--rho", default="1", help="the rho compared (default: 1)")
    p.add_argument("--title", default="", help="the figure's title")
    p.add_argument("--out", type=Path, required=True, help="output .png")
    args = p.parse_args()
    panels = {title: dict(series_cells(spec, args.rho) for spec in specs) for title, *specs in args.panel}
    names = {m: display_name(m) for series in panels.values() for cells in series.values() for m in cells}
    figure = comparison_figure(panels, names, args.title or f"Test accuracy at rho = {args.rho}, mean ± s.e. over seeds")
    with atomic_path(args.out) as tmp:
        figure.savefig(tmp, dpi=110, format="png")
    setup_logging("compare_studies").info("%d panels: %s", len(panels), args.out)


if __name__ == "__main__":
    main()
