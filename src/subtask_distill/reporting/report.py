"""The study's self-contained HTML report: tables, figures (embedded), provenance."""

from __future__ import annotations

import base64
import csv
import html
import io
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from ..artifacts import describe_artifact

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 0.8em; }
.legend { color: #555; font-size: 0.85em; }
"""


def embed_png(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def csv_as_html(text: str) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return "<p>(empty)</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def benchmark_summary(paths: Iterable[Path]) -> list[tuple[str, int, float, float]]:
    """(rule, jobs, total seconds, max seconds) from Snakemake benchmark TSVs under benchmarks/<rule>/."""
    seconds: dict[str, list[float]] = defaultdict(list)
    for path in paths:
        path = Path(path)
        parts = path.parts
        rule = parts[parts.index("benchmarks") + 1].removesuffix(".tsv") if "benchmarks" in parts else path.stem
        with open(path) as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                seconds[rule].append(float(row["s"]))
    return [(rule, len(v), sum(v), max(v)) for rule, v in sorted(seconds.items())]


def _teacher_source(metrics: dict[str, Any]) -> str:
    """A trained teacher's clean-image accuracy, or where a pretrained teacher's weights came from."""
    if "all_classes_test_acc" in metrics:
        return (
            f"trained here: {metrics['all_classes_test_acc']:.1f}% on all classes, "
            f"{metrics['subtask_test_acc']:.1f}% with the subtask logits (clean test images)"
        )
    source = metrics.get("source", {})
    return html.escape(f"pretrained: {source.get('value', '?')} ({metrics.get('arch', '?')})")


def study_settings(config: dict[str, Any]) -> list[str]:
    """What sets this study apart, one line each for the report's header: the artifact always; the selection
    rules, a biased teacher and layer subsets where they differ from the paper's."""
    lines = [describe_artifact(config["data"]["artifact"])]
    rules = config.get("selection", ["oracle"])
    if rules != ["oracle"]:
        lines.append(f"selection rules: {', '.join(rules)} (the checkpoints analysed: {rules[0]})")
    bias = (config.get("teacher_training") or {}).get("artifact_rho", 0)
    if bias:
        lines.append(f"a biased teacher: {bias:g} of its training images of the subtask classes carry the artifact tied to their class")
    subsets = config.get("layer_subsets", ["all"])
    if subsets != ["all"]:
        lines.append("layer subsets of the layer-wise methods: " + "; ".join(
            "all" if subset == "all" else "layers " + ", ".join(map(str, subset)) for subset in subsets
        ))
    return lines


def build_report(
    study: str,
    table_html: str,
    teacher_metrics: dict[str, dict[str, Any]],
    preview: Path | None,
    figures: Sequence[tuple[str, Path]],
    relevance_csv: str,
    provenance: dict[str, Any],
    benchmarks: Sequence[tuple[str, int, float, float]],
    settings: Sequence[str] = (),
) -> str:
    settings_html = "".join(f"<li>{html.escape(line)}</li>" for line in settings)
    teacher_rows = "\n".join(f"<tr><td>{html.escape(pair)}</td><td>{_teacher_source(m)}</td></tr>" for pair, m in teacher_metrics.items())
    bench_rows = "\n".join(
        f"<tr><td>{html.escape(rule)}</td><td>{jobs}</td><td>{total:.0f}</td><td>{longest:.1f}</td></tr>"
        for rule, jobs, total, longest in benchmarks
    )
    figure_html = "\n".join(f"<h3>{html.escape(title)}</h3>\n{embed_png(path, title)}" for title, path in figures)
    git = provenance.get("git", {})
    versions = ", ".join(f"{k} {v}" for k, v in provenance.get("versions", {}).items() if v)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Subtask distillation: {html.escape(study)}</title>
<style>{_STYLE}</style></head><body>
<h1>Subtask distillation under spurious correlation: study <code>{html.escape(study)}</code></h1>
<p>A teacher is distilled into a student for a subtask; a fraction rho of the images carries an artifact tied to the
image class on training data and not on test data.</p>
<ul class="settings">{settings_html}</ul>

<h2>Table I: test accuracy</h2>
{table_html}

<h2>Teachers</h2>
<p>Ref in Table I is the teacher's accuracy on the (contaminated) subtask test images of each rho.</p>
<table><thead><tr><th>pair</th><th>teacher</th></tr></thead>
<tbody>{teacher_rows}</tbody></table>
{"" if preview is None else "<h2>Data</h2>" + chr(10) + embed_png(preview, "contaminated images")}

<h2>Representations and relevance</h2>
{figure_html}

<h2>Teacher-student agreement of occlusion relevance</h2>
<p class="legend">Every model is scored on the same images, the contaminated test images of the largest rho
(scored_rho), whatever rho it was trained at (rho). Pearson correlation between the teacher's and the student's patch
relevance over all (image, patch) points, the student's relevance averaged over its seeds at lambda*; and the mean share
of absolute relevance that sits on
the artifact (its removal, against the other patches).</p>
{csv_as_html(relevance_csv)}

<h2>Provenance</h2>
<p>Git commit <code>{html.escape(str(git.get("commit")))}</code>{" (with uncommitted changes)" if git.get("dirty") else ""};
{html.escape(versions)}; generated {html.escape(str(provenance.get("finished_utc")))} on {html.escape(str(provenance.get("host")))}.</p>
<h3>Wall time per rule (from Snakemake benchmarks)</h3>
<table><thead><tr><th>rule</th><th>jobs</th><th>total s</th><th>longest s</th></tr></thead><tbody>{bench_rows}</tbody></table>
<h3>Config</h3>
<pre>{html.escape(yaml.safe_dump(provenance.get("config", {}), sort_keys=False))}</pre>
</body></html>
"""
