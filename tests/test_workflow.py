"""End to end through Snakemake: the tiny study, and a dry run of the default one."""

import csv
import json
import re

import numpy as np
import pytest
import yaml

from .conftest import REPO, run_snakemake, write_config

pytestmark = pytest.mark.slow


def test_dry_run_of_the_default_config_lists_the_grid(workdir):
    result = run_snakemake(workdir, "-n", "--quiet", "rules")
    assert result.returncode == 0, result.stderr
    counts = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    # 3 rho x 2 seeds for each per-split job; output-only KD has one lambda, the 4 others 2 each, trained
    # as one bank per (method, rho, seed).
    assert counts["contaminate"] == 6 and counts["teacher_logits"] == 6 and counts["fit_subspace"] == 6
    assert "54 student runs, trained by 30 jobs" in result.stdout + result.stderr
    assert counts["train_student"] == 6 and counts["train_bank"] == 6 * 4
    assert counts["train_teacher"] == 1 and counts["table"] == 1
    # The teacher is analysed now, once; students only once Table I (a checkpoint) names lambda*.
    assert "analyse_student" not in counts and counts["analyse_teacher"] == 1
    assert counts["plot_figures"] == 1 and counts["build_report"] == 1


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    result = run_snakemake(workdir, "--cores", "2", "all", configfile=REPO / "configs" / "test.yaml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir / "results" / "test"


def test_tiny_study_writes_a_table_row_per_pair_rho_and_method(tiny_study):
    with open(tiny_study / "table1.csv") as handle:
        rows = list(csv.DictReader(handle))
    methods = ["kd", "at", "vid", "vkd", "subdistill"]
    assert [(r["pair"], r["rho"], r["method"]) for r in rows] == [
        ("embedded", rho, method) for rho in ("0", "1") for method in methods
    ]
    for row in rows:
        assert int(row["n_seeds"]) == 2
        assert row["lambda"] == "0" if row["method"] == "kd" else row["lambda"] in ("0.1", "1")
        assert 0.0 <= float(row["test_acc_mean"]) <= 100.0
        assert 0.0 <= float(row["teacher_test_acc"]) <= 100.0
    markdown = (tiny_study / "table1.md").read_text()
    assert all(name in markdown for name in ("Output only", "AT", "VID", "VKD", "SubDistill"))


def test_only_the_runs_at_lambda_star_are_analysed(tiny_study):
    with open(tiny_study / "table1.csv") as handle:
        chosen = {(r["method"], r["rho"]): r["lambda"] for r in csv.DictReader(handle)}
    analysed = sorted(tiny_study.glob("runs/*/*/rho*/lam*/seed*/analysis.npz"))
    assert len(analysed) == len(chosen) * 2  # two seeds at each lambda*
    for path in analysed:
        method, rho, lam = path.parts[-5], path.parts[-4], path.parts[-3]
        assert lam.removeprefix("lam") == chosen[(method, rho.removeprefix("rho"))]


def test_runs_and_history_tables_hold_every_run_and_epoch_and_give_table_one(tiny_study):
    with open(tiny_study / "runs.csv") as handle:
        runs = list(csv.DictReader(handle))
    with open(tiny_study / "history.csv") as handle:
        history = list(csv.DictReader(handle))
    assert len(runs) == 2 * 2 * (1 + 4 * 2) and len(history) == 2 * len(runs)  # 2 epochs per run
    keys = {(r["method"], r["rho"], r["lambda"], r["seed"]) for r in runs}
    assert len(keys) == len(runs) and {(h["method"], h["rho"], h["lambda"], h["seed"]) for h in history} == keys
    metrics = json.loads((tiny_study / "runs/embedded/vid/rho1/lam0.1/seed0/metrics.json").read_text())
    (row,) = [r for r in runs if (r["method"], r["rho"], r["lambda"], r["seed"]) == ("vid", "1", "0.1", "0")]
    assert float(row["val_acc"]) == metrics["val_acc"] and float(row["test_acc"]) == metrics["test_acc"]
    assert row["commit"] == (metrics["provenance"]["git"]["commit"] or "") and row["cpu"]
    with open(tiny_study / "table1.csv") as handle:
        table = list(csv.DictReader(handle))
    for cell in table:
        seeds = [r for r in runs if (r["method"], r["rho"], r["lambda"]) == (cell["method"], cell["rho"], cell["lambda"])]
        mean = sum(float(r["test_acc"]) for r in seeds) / len(seeds)
        assert abs(float(cell["test_acc_mean"]) - mean) < 1e-4


def test_every_model_is_scored_on_the_contaminated_test_images_of_the_largest_rho(tiny_study):
    """As the paper's Fig. 3: students trained at rho = 0 are scored on the same images as those trained at 1."""
    teacher = np.load(tiny_study / "analysis" / "embedded" / "teacher.npz")
    assert str(teacher["scored_rho"]) == "1"
    assert np.all(teacher["artifacts"][teacher["relevance_images"]] >= 0)  # every relevance image carries the artifact
    by_rho = {}
    for path in tiny_study.glob("runs/embedded/*/rho*/lam*/seed*/analysis.npz"):
        analysis = np.load(path)
        assert str(analysis["scored_rho"]) == "1"
        assert np.array_equal(analysis["relevance_images"], teacher["relevance_images"])
        by_rho.setdefault(str(analysis["rho"]), []).append(path)
    assert sorted(by_rho) == ["0", "1"]


def test_every_run_records_metrics_and_provenance(tiny_study):
    metrics_files = sorted((tiny_study / "runs").glob("*/*/rho*/lam*/seed*/metrics.json"))
    assert len(metrics_files) == 2 * 2 * (1 + 4 * 2)
    for path in metrics_files:
        metrics = json.loads(path.read_text())
        assert metrics["epochs_run"] == 2 and 1 <= metrics["best_epoch"] <= 2
        assert set(metrics["provenance"]) >= {"config", "config_sha256", "versions", "git"}
        assert metrics["provenance"]["versions"]["torch"]
        assert (path.parent / "student.pt").is_file()


def test_every_job_left_a_log_and_a_benchmark(tiny_study):
    logs = list((tiny_study / "logs").rglob("*.log"))
    benchmarks = list((tiny_study / "benchmarks").rglob("*.tsv"))
    assert len(logs) == len(benchmarks) >= 59  # the tiny study runs 60 jobs
    assert not [log.name for log in logs if log.stat().st_size == 0], "every job says in its log what it did"
    training_log = next((tiny_study / "logs" / "train_student").rglob("*.log")).read_text()
    assert "epoch 2/2" in training_log and "val_acc" in training_log
    bank_log = (tiny_study / "logs" / "train_bank" / "embedded" / "at" / "rho1_seed0.log").read_text()
    assert "lambda 0.1: epoch 2/2" in bank_log and "lambda 1: best epoch" in bank_log


def test_teacher_metrics_and_preview(tiny_study):
    teacher = json.loads((tiny_study / "teachers" / "embedded" / "teacher_metrics.json").read_text())
    assert {"all_classes_test_acc", "subtask_test_acc"} <= set(teacher)
    assert (tiny_study / "data" / "preview.png").read_bytes()[:4] == b"\x89PNG"


def test_subspaces_are_fitted_once_per_rho_and_seed(tiny_study):
    summaries = sorted((tiny_study / "subspaces" / "embedded" / "subdistill").glob("rho*/seed*.json"))
    assert len(summaries) == 4
    layers = json.loads(summaries[0].read_text())["layers"]
    assert [layer["directions"] for layer in layers] == [8, 16, 32, 64]
    assert all(0 < layer["captured_variance"] <= 1 for layer in layers)


def test_report_holds_the_table_figures_and_relevance(tiny_study):
    html = (tiny_study / "report.html").read_text()
    assert '<table class="table1">' in html and "SubDistill" in html
    assert html.count("data:image/png;base64,") == 1 + 3  # the data preview and the pair's three figures
    assert "Teacher-student agreement" in html and "Git commit" in html
    for kind in ("tsne", "relevance_maps", "relevance_scatter"):
        assert (tiny_study / "figures" / f"embedded_{kind}.png").read_bytes()[:4] == b"\x89PNG"
    for ext in ("md", "html", "tex"):
        assert (tiny_study / f"table1.{ext}").stat().st_size > 0
    with open(tiny_study / "relevance_correlation.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["method"], float(r["rho"])) for r in rows} == {
        (m, rho) for m in ("kd", "at", "vid", "vkd", "subdistill") for rho in (0.0, 1.0)
    }
    assert {float(r["scored_rho"]) for r in rows} == {1.0}
    assert all(-1 <= float(r["correlation"]) <= 1 and int(r["n_points"]) > 0 for r in rows)


def scheduled_jobs(result) -> set[str]:
    block = result.stdout.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", block, flags=re.M)} - {"total"}


def test_changing_a_plot_setting_reruns_only_the_plots(tiny_study, tmp_path):
    workdir = tiny_study.parents[1]
    config = yaml.safe_load((REPO / "configs" / "test.yaml").read_text())
    config["plots"] = {"tsne_perplexity": 7, "palette": "Set2", "heatmap_images": 2}
    result = run_snakemake(workdir, "-n", "report", configfile=write_config(tmp_path / "restyled.yaml", config))
    assert result.returncode == 0, result.stderr
    assert scheduled_jobs(result) == {"plot_figures", "build_report", "report"}


def test_snakemake_report_archive(tiny_study):
    workdir = tiny_study.parents[1]
    result = run_snakemake(workdir, "--report", "report.zip", configfile=REPO / "configs" / "test.yaml")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (workdir / "report.zip").stat().st_size > 10_000


def test_rerun_has_nothing_to_do(tiny_study):
    workdir = tiny_study.parents[1]
    result = run_snakemake(workdir, "-n", "all", configfile=REPO / "configs" / "test.yaml")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr
