"""Table I laid out like the paper, in Markdown, HTML and LaTeX.

Rows are (pair, rho); columns Ref, one per method, and the row's largest
standard error. Method cells are coloured by accuracy as in the paper: red
for [0, 50], orange for (50, 75], yellow for (75, 90] (a boundary value takes
the lower band). Where the paper reports the same (pair, rho), each cell also
shows the paper's value.
"""

from __future__ import annotations

import csv
import html
import io
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any, Sequence

from ..study import format_number

BANDS = (
    (50.0, "red", "#f4a6a6", "red!35"),
    (75.0, "orange", "#f9c98f", "orange!40"),
    (90.0, "yellow", "#fbec8f", "yellow!50"),
)
_MARKERS = {"red": "🟥", "orange": "🟧", "yellow": "🟨"}
PAPER_METHODS = ("kd", "at", "vid", "vkd", "subdistill")


def band(accuracy: float) -> str | None:
    """The paper's colour band of an accuracy in percent, or None above 90."""
    if math.isnan(accuracy):
        return None
    for upper, name, _, _ in BANDS:
        if accuracy <= upper:
            return name
    return None


def paper_table() -> dict[tuple[str, str], dict[str, float]]:
    """The paper's Table I, keyed by (pair, rho): Ref, each method, max err."""
    text = resources.files(__package__).joinpath("paper_table1.csv").read_text()
    out = {}
    for row in csv.DictReader(io.StringIO(text)):
        key = (row.pop("pair"), format_number(row.pop("rho")))
        out[key] = {k: float(v) for k, v in row.items()}
    return out


@dataclass
class Cell:
    mean: float
    se: float
    lam: str
    paper: float | None = None


@dataclass
class Line:
    pair: str
    rho: str
    ref: float
    cells: list[Cell | None]
    max_err: float
    paper_ref: float | None = None


def layout(rows: Sequence[dict[str, Any]], methods: Sequence[str]) -> list[Line]:
    """One line per (pair, rho) in order of appearance; cells follow ``methods``."""
    paper = paper_table()
    by_key = {(r["pair"], r["rho"], r["method"]): r for r in rows}
    keys = list(dict.fromkeys((r["pair"], r["rho"]) for r in rows))
    lines = []
    for pair, rho in keys:
        reference = paper.get((pair, rho), {})
        cells: list[Cell | None] = []
        for method in methods:
            r = by_key.get((pair, rho, method))
            cells.append(
                None if r is None else Cell(r["test_acc_mean"], r["test_acc_se"], r["lambda"], reference.get(method))
            )
        present = [r for r in rows if (r["pair"], r["rho"]) == (pair, rho)]
        errors = [r["test_acc_se"] for r in present if not math.isnan(r["test_acc_se"])]
        lines.append(
            Line(
                pair=pair,
                rho=rho,
                ref=present[0]["teacher_test_acc"],
                cells=cells,
                max_err=max(errors) if errors else float("nan"),
                paper_ref=reference.get("ref"),
            )
        )
    return lines


def _number(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.1f}"


def _with_paper(value: float, paper: float | None) -> str:
    return _number(value) if paper is None else f"{_number(value)} ({paper:.1f})"


def _legend(lines: Sequence[Line]) -> str:
    paper = any(line.paper_ref is not None for line in lines)
    text = "Test accuracy (%) at the lambda chosen on validation, mean ± standard error over seeds."
    if paper:
        text += " In parentheses: the paper's value."
    return text + " Red: <= 50, orange: <= 75, yellow: <= 90."


def _cells(line: Line, render_cell, missing: str) -> list[str]:
    return [missing if cell is None else render_cell(cell) for cell in line.cells]


def markdown(rows: Sequence[dict[str, Any]], methods: Sequence[str], names: dict[str, str]) -> str:
    lines = layout(rows, methods)
    out = [
        "| pair | rho | Ref | " + " | ".join(names[m] for m in methods) + " | max err |",
        "|---|---|---|" + "---|" * len(methods) + "---|",
    ]
    def render_cell(cell: Cell) -> str:
        marker = _MARKERS.get(band(cell.mean) or "", "")
        return f"{marker} {_with_paper(cell.mean, cell.paper)} ± {_number(cell.se)} (λ={cell.lam})".strip()

    for line in lines:
        cells = _cells(line, render_cell, "n/a")
        ref = _with_paper(line.ref, line.paper_ref)
        out.append(f"| {line.pair} | {line.rho} | {ref} | " + " | ".join(cells) + f" | {_number(line.max_err)} |")
    return "\n".join(out) + "\n\n" + _legend(lines) + "\n"


def html_table(rows: Sequence[dict[str, Any]], methods: Sequence[str], names: dict[str, str]) -> str:
    lines = layout(rows, methods)
    colours = {name: colour for _, name, colour, _ in BANDS}
    head = "".join(f"<th>{html.escape(names[m])}</th>" for m in methods)

    def render_cell(cell: Cell) -> str:
        style = f' style="background:{colours[band(cell.mean)]}"' if band(cell.mean) else ""
        text = f"{_with_paper(cell.mean, cell.paper)} ± {_number(cell.se)}"
        return f"<td{style}>{text}<br><small>λ={cell.lam}</small></td>"

    body = []
    for line in lines:
        cells = _cells(line, render_cell, "<td>n/a</td>")
        body.append(
            f"<tr><td>{html.escape(line.pair)}</td><td>{line.rho}</td><td>{_with_paper(line.ref, line.paper_ref)}</td>"
            + "".join(cells)
            + f"<td>{_number(line.max_err)}</td></tr>"
        )
    return (
        '<table class="table1">\n<thead><tr><th>pair</th><th>rho</th><th>Ref</th>'
        + head
        + "<th>max err</th></tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + f"\n</tbody>\n</table>\n<p class=\"legend\">{html.escape(_legend(lines))}</p>\n"
    )


def latex(rows: Sequence[dict[str, Any]], methods: Sequence[str], names: dict[str, str]) -> str:
    """A tabular for \\usepackage[table]{xcolor} (cell colours) and booktabs."""
    lines = layout(rows, methods)
    colours = {name: colour for _, name, _, colour in BANDS}

    def escape(text: str) -> str:
        return text.replace("_", r"\_").replace("&", r"\&").replace("%", r"\%")

    out = [
        "% Requires \\usepackage[table]{xcolor} and \\usepackage{booktabs}.",
        r"\begin{tabular}{ll" + "r" * (len(methods) + 2) + "}",
        r"\toprule",
        "pair & $\\rho$ & Ref & " + " & ".join(escape(names[m]) for m in methods) + r" & max err \\",
        r"\midrule",
    ]
    def render_cell(cell: Cell) -> str:
        colour = band(cell.mean)
        prefix = f"\\cellcolor{{{colours[colour]}}}" if colour else ""
        return prefix + _with_paper(cell.mean, cell.paper)

    for line in lines:
        cells = _cells(line, render_cell, "n/a")
        out.append(
            f"{escape(line.pair)} & {line.rho} & {_with_paper(line.ref, line.paper_ref)} & "
            + " & ".join(cells)
            + f" & {_number(line.max_err)} \\\\"
        )
    out += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(out)


RULE_TITLES = {
    "oracle": "lambda* and the best epoch chosen on validation images whose artifact is random (oracle)",
    "spurious": "lambda* and the best epoch chosen on validation images carrying the training correlation (spurious)",
}
_HEADINGS = {
    markdown: lambda title: f"**{title}**\n\n",
    html_table: lambda title: f"<h3>{html.escape(title)}</h3>\n",
    latex: lambda title: f"% {title}\n",
}


def per_rule(renderer, rows: Sequence[dict[str, Any]], methods: Sequence[str], names: dict[str, str]) -> str:
    """Table I rendered once per selection rule, each under a heading naming the rule (a study with only the
    paper's oracle rule gets its one table without a heading)."""
    rules = list(dict.fromkeys(row["selection"] for row in rows))
    if rules == ["oracle"]:
        return renderer(rows, methods, names)
    return "\n".join(
        _HEADINGS[renderer](RULE_TITLES.get(rule, rule)) + renderer([r for r in rows if r["selection"] == rule], methods, names)
        for rule in rules
    )
